"""Where a redirect may go when its target comes from the request (`?next=`, a form's `next`, the
Referer): only a path on this site. Every such redirect goes through `local_target`.

The rules, first match wins:
1. Empty or missing: the fallback.
2. An absolute http(s) URL whose host is this request's host (a Referer): its path and query.
3. Anything holding a character other than printable ASCII (controls, tabs, spaces, non-ASCII,
   which browsers strip or fold: `/\\t/evil.example` becomes `//evil.example`) or a backslash
   (browsers read `\\` as `/`): the fallback.
4. Anything that does not start with one `/` (`//evil`, `https:evil`, `evil.example`), or that still
   does once percent-decoded (`/%2F%2Fevil`), or that a URL parser reads with a scheme or a host:
   the fallback.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"\\"}


def _is_local_path(target: str) -> bool:
    if not target or any(ch not in _PRINTABLE for ch in target):
        return False
    for form in (target, unquote(target)):
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return False
        if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in form):
            return False
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return False
    return True


def local_target(raw: str | None, fallback: str, *, host: str | None = None) -> str:
    """`raw` when it is a path on this site, else `fallback`. `host`: this request's host, so that
    a same-site absolute URL (a Referer) keeps its path."""
    target = raw or ""
    if not target:
        return fallback
    if host and target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        if parts.netloc.lower() != host.lower():
            return fallback
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    return target if _is_local_path(target) else fallback
