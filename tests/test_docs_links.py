"""The README and docs/: every relative link and anchor resolves, every docs page is one click from the
README, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str, keep_code: bool = False) -> list[str]:
    """The lines outside fenced code blocks, inline code removed (links there are not links) unless
    `keep_code` (a heading's anchor keeps the text of its code)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line if keep_code else re.sub(r"`[^`]*`", "", line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[*_`]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path.read_text(encoding="utf-8"), keep_code=True):
        found = HEADING.match(line)
        if not found:
            continue
        base = slug(found.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    for line in _prose(path.read_text(encoding="utf-8")):  # explicit <a id="..."> / name anchors
        out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line))
    return out


def links(path: Path) -> list[str]:
    return [m.group(1) for line in _prose(path.read_text(encoding="utf-8")) for m in LINK.finditer(line)]


def broken(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(ROOT)}: {target} (no such anchor in {dest.name})")
    return problems


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = [p for page in PAGES for p in broken(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_one_click_from_the_readme() -> None:
    linked = {
        (ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md") if not t.startswith("#")
    }
    missing = [d.name for d in DOCS if d.resolve() not in linked]
    assert DOCS and not missing, f"docs pages the README does not link: {missing}"


def test_the_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines; details belong in docs/"


def test_the_checker_sees_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title here\n\n[ok](#title-here) [bad](#nope) [gone](b.md)\n")
    assert slug("How a rollout moves") == "how-a-rollout-moves"
    assert slug("Nothing lost, nothing sent twice") == "nothing-lost-nothing-sent-twice"
    problems = [p.split(": ", 1)[1] for p in _broken_in(tmp_path / "a.md")]
    assert problems == ["#nope (no such anchor in a.md)", "b.md (no such file)"]


def _broken_in(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return broken(path)
    finally:
        ROOT = saved
