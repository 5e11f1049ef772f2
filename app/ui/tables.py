"""Sortable, numbered-page tables: the query-string side (``?sort=name&dir=desc&page=3``).

`table_state(columns, default)` reads and checks the arguments (an unknown column falls back to the
default, a page past the end to the last page); templates use the ``sort_header`` and ``pager``
macros of ``ui/_macros.html`` with the returned `TableState`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import request

PER_PAGE = 50


@dataclass(frozen=True)
class TableState:
    sort: str
    descending: bool
    page: int
    per_page: int = PER_PAGE
    total: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        """Rows before this page (before the total is known: as asked; after: within the pages)."""
        page = min(self.page, self.pages) if self.total else self.page
        return (page - 1) * self.per_page

    def page_numbers(self, around: int = 2) -> list[int | None]:
        """1 … 4 5 [6] 7 8 … 20: the first, the last and those near the current page (None: a gap)."""
        wanted = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        shown = sorted(p for p in wanted if 1 <= p <= self.pages)
        out: list[int | None] = []
        for number in shown:
            if out and number - (out[-1] or 0) > 1:
                out.append(None)
            out.append(number)
        return out

    def with_total(self, total: int) -> TableState:
        state = TableState(self.sort, self.descending, self.page, self.per_page, total)
        return TableState(self.sort, self.descending, min(self.page, state.pages), self.per_page, total)


def table_state(columns: Sequence[str], default: str, default_descending: bool = False) -> TableState:
    sort = request.args.get("sort", default)
    if sort not in columns:
        sort = default
    direction = request.args.get("dir", "")
    descending = direction == "desc" if direction in ("asc", "desc") else default_descending
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page = 1
    return TableState(sort=sort, descending=descending, page=page)
