"""Campaign rules on a recommendation list: categories, price range, at most N per category.

Pure: works on any candidates that expose `category` and `price`. Disabled items never get this far
(the lookup drops them when it joins the catalog).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from campaigns.errors import InputError


class Priced(Protocol):
    @property
    def category(self) -> str: ...

    @property
    def price(self) -> float: ...


T = TypeVar("T", bound=Priced)


@dataclass(frozen=True)
class CampaignRules:
    categories: frozenset[str] = frozenset()  # empty: every category
    exclude_categories: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    max_per_category: int | None = None

    def allows(self, category: str, price: float) -> bool:
        if self.categories and category not in self.categories:
            return False
        if category in self.exclude_categories:
            return False
        if self.min_price is not None and price < self.min_price:
            return False
        return not (self.max_price is not None and price > self.max_price)

    def apply(self, candidates: Iterable[T], limit: int) -> list[T]:
        """The first `limit` candidates (in their order) that pass, with at most N per category."""
        chosen: list[T] = []
        per_category: dict[str, int] = {}
        for candidate in candidates:
            if len(chosen) >= limit:
                break
            if not self.allows(candidate.category, candidate.price):
                continue
            seen = per_category.get(candidate.category, 0)
            if self.max_per_category is not None and seen >= self.max_per_category:
                continue
            per_category[candidate.category] = seen + 1
            chosen.append(candidate)
        return chosen

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> CampaignRules:
        """From JSON such as {"categories": ["kitchen"], "max_price": 20, "max_per_category": 2}."""
        if not raw:
            return cls()
        known = {"categories", "exclude_categories", "min_price", "max_price", "max_per_category"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InputError(f"unknown rule {unknown[0]!r}; known: {', '.join(sorted(known))}", where="rules")
        rules = cls(
            categories=_names(raw.get("categories"), "rules.categories"),
            exclude_categories=_names(raw.get("exclude_categories"), "rules.exclude_categories"),
            min_price=_number(raw.get("min_price"), "rules.min_price"),
            max_price=_number(raw.get("max_price"), "rules.max_price"),
            max_per_category=_count(raw.get("max_per_category"), "rules.max_per_category"),
        )
        if rules.min_price is not None and rules.max_price is not None and rules.min_price > rules.max_price:
            raise InputError("min_price is above max_price", where="rules.min_price")
        return rules

    def to_mapping(self) -> dict[str, Any]:
        return {
            "categories": sorted(self.categories),
            "exclude_categories": sorted(self.exclude_categories),
            "min_price": self.min_price,
            "max_price": self.max_price,
            "max_per_category": self.max_per_category,
        }


def _names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise InputError("must be a list of category names", where=where)
    return frozenset(str(v) for v in value)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError("must be a number >= 0", where=where)
    return float(value)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("must be a whole number >= 1", where=where)
    return value
