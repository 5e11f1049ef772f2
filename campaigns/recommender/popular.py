"""Live best-sellers from the interactions table: the fallback for contacts without recommendations.

Works before any model was trained. Best-sellers are the items the most distinct contacts interacted
with during the last `WINDOW_DAYS` of data, overall and per country; with no interactions at all
they are the newest enabled items. Results are cached per process for a few minutes and keyed by a
cheap fingerprint of the interactions table, so the send path pays for the GROUP BY once, not per
batch, and a changed table is never served stale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.recommender.matrix import KIND_WEIGHTS
from models import Contact, Interaction, Item

WINDOW_DAYS = 90
LIST_LENGTH = 60
TTL_SECONDS = 300.0


@dataclass(frozen=True)
class BestSellers:
    """(item_id, score in (0, 1]) lists, best first."""

    overall: list[tuple[int, float]]
    by_country: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    newest: bool = False  # no interactions at all: `overall` is the newest items

    def for_country(self, country: str) -> tuple[list[tuple[int, float]], str]:
        """The list for this country (or overall) and the reason to show with it."""
        if self.newest:
            return self.overall, "new in the catalog"
        ranked = self.by_country.get(country) if country else None
        if ranked:
            return ranked, f"popular in {country}"
        return self.overall, "popular right now"


_cache: dict[tuple[object, ...], tuple[float, object]] = {}
_lock = threading.Lock()


def _cached(key: tuple[object, ...]) -> object | None:
    with _lock:
        hit = _cache.get(key)
    if hit is None or time.monotonic() - hit[0] > TTL_SECONDS:
        return None
    return hit[1]


def _store(key: tuple[object, ...], value: object) -> None:
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[key] = (time.monotonic(), value)


# The interactions table's fingerprint: (rows, highest id, latest occurred_at), each aggregate in a
# subquery of its own. Together in one SELECT they make one scan of the whole table (SQLite, and any
# database that reads the three from one pass); apart, each is answered from an index: the two
# maximums by a lookup at the end of the primary key's and `occurred_at`'s index (a few pages), the
# count from the smallest index. Same three values, once per send batch.
_FINGERPRINT = sa.select(
    sa.select(sa.func.count()).select_from(Interaction).scalar_subquery(),
    sa.select(sa.func.max(Interaction.id)).scalar_subquery(),
    sa.select(sa.func.max(Interaction.occurred_at)).scalar_subquery(),
)


def best_sellers(session: Session, countries: Iterable[str], n: int = LIST_LENGTH) -> BestSellers:
    wanted = sorted({c for c in countries if c})
    count, max_id, latest = session.execute(_FINGERPRINT).one()
    bind = str(session.get_bind().engine.url)
    if not count:
        return BestSellers(overall=_newest(session, n), newest=True)
    stamp = (bind, count, max_id, latest, n)
    since = latest - timedelta(days=WINDOW_DAYS)
    overall = _cached((*stamp, None))
    if overall is None:
        overall = _ranked(session, since, None, n).get("", [])
        _store((*stamp, None), overall)
    by_country: dict[str, list[tuple[int, float]]] = {}
    missing = []
    for country in wanted:
        hit = _cached((*stamp, country))
        if hit is None:
            missing.append(country)
        else:
            by_country[country] = hit  # type: ignore[assignment]
    if missing:
        fresh = _ranked(session, since, missing, n)
        for country in missing:
            by_country[country] = fresh.get(country, [])
            _store((*stamp, country), by_country[country])
    return BestSellers(overall=overall, by_country=by_country)  # type: ignore[arg-type]


def _ranked(
    session: Session, since: object, countries: list[str] | None, n: int
) -> dict[str, list[tuple[int, float]]]:
    """Best-sellers per country (or overall, under the key "") from one GROUP BY."""
    buyers = sa.func.count(sa.distinct(Interaction.contact_id)).label("buyers")
    where = (
        Interaction.occurred_at >= since,
        Interaction.kind.in_(tuple(KIND_WEIGHTS)),
        Item.enabled.is_(True),
    )
    rows: Iterable[tuple[str, int, int]]
    if countries is None:
        overall = (
            sa.select(Interaction.item_id, buyers)
            .join(Item, Item.id == Interaction.item_id)
            .where(*where)
            .group_by(Interaction.item_id)
            .order_by(buyers.desc(), Interaction.item_id)
            .limit(n)
        )
        rows = [("", item_id, count) for item_id, count in session.execute(overall)]
    else:
        per_country = (
            sa.select(Contact.country, Interaction.item_id, buyers)
            .join(Item, Item.id == Interaction.item_id)
            .join(Contact, Contact.id == Interaction.contact_id)
            .where(*where, Contact.country.in_(countries))
            .group_by(Contact.country, Interaction.item_id)
        )
        rows = [(country, item_id, count) for country, item_id, count in session.execute(per_country)]
    lists: dict[str, list[tuple[int, int]]] = {}
    for country, item_id, count in rows:
        lists.setdefault(country, []).append((int(item_id), int(count)))
    ranked: dict[str, list[tuple[int, float]]] = {}
    for country, entries in lists.items():
        entries.sort(key=lambda e: (-e[1], e[0]))
        top = entries[:n]
        peak = float(top[0][1]) if top else 1.0
        ranked[country] = [(item_id, count / peak) for item_id, count in top]
    return ranked


def _newest(session: Session, n: int) -> list[tuple[int, float]]:
    ids = session.scalars(
        sa.select(Item.id)
        .where(Item.enabled.is_(True))
        .order_by(Item.created_at.desc(), Item.id.desc())
        .limit(n)
    ).all()
    return [(int(item_id), 1.0 / (rank + 1)) for rank, item_id in enumerate(ids)]


def forget_cached() -> None:
    with _lock:
        _cache.clear()
