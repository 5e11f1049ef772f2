"""The tree's shape: every module imports, no two modules import each other (directly or around a
circle), no module grows past 400 lines, and `campaigns/` stays grouped by concept (README,
Architecture)."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "campaigns", "models")
MAX_LINES = 400
MAX_FLAT_MODULES = 10  # modules directly in campaigns/, beside its packages


def _python_files(*tops: str) -> Iterator[Path]:
    for top in tops:
        path = ROOT / top
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*.py")):
            if "__pycache__" not in file.parts:
                yield file


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _python_files(*PACKAGES)}


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside functions alike.

    `from package import name` points at `package.name` when that is a module (Python imports the
    package first, but a package part-way through its own `__init__` can still hand out its
    submodules), else at `package`."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: None if is_package else -1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found and found != name:
                    edges.add(found)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_worker_entry_imports() -> None:
    importlib.import_module("worker")


def test_no_import_circles() -> None:
    assert circles(import_graph(modules())) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_from_package_import_submodule_points_at_the_submodule(tmp_path: Path) -> None:
    known = {"pkg": tmp_path / "__init__.py", "pkg.sub": tmp_path / "sub.py"}
    known["pkg"].write_text("from pkg import sub\n")
    known["pkg.sub"].write_text("import os\n")
    assert import_graph(known) == {"pkg": {"pkg.sub"}, "pkg.sub": set()}
    known["pkg.sub"].write_text("from pkg import VALUE\n")  # needs the package's own names: a circle
    assert circles(import_graph(known)) == [["pkg", "pkg.sub"]]


def test_no_module_over_400_lines() -> None:
    tops = (*PACKAGES, "tests", "bench", "scripts", "worker.py")
    long = {
        str(p.relative_to(ROOT)): n
        for p in _python_files(*tops)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_campaigns_is_grouped_by_concept() -> None:
    flat = sorted(p.stem for p in (ROOT / "campaigns").glob("*.py") if p.stem != "__init__")
    assert len(flat) <= MAX_FLAT_MODULES, flat
    for package in sorted(p for p in (ROOT / "campaigns").iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc, f"campaigns/{package.name}/__init__.py says what the package owns"
