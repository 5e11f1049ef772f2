"""What the rest of mailramp asks the recommender: look up, precompute, or preview recommendations.

- `lookup` is on the send path: it only reads precomputed rows (a handful of queries per batch of
  1,000 contacts, none per contact). Contacts without a row get the live best-sellers of their
  country (see `popular.py`), which also works before any model was trained.
- `ensure_scored` is what the planner calls before a wave: it scores and stores the contacts whose
  rows are missing or older than `max_age`.
- `score_contact` scores any version for one contact without storing (shadow mode, previews).

`model_version_id=None` means the current champion. Disabled items are never returned; campaign
rules (`CampaignRules`) filter what remains. Functions here flush but do not commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.recommender import history, popular, registry, scoring
from campaigns.recommender.rules import CampaignRules
from models import Item, Recommendation, utcnow

STORED_PER_CONTACT = 30  # more than any email shows, so campaign rules still leave enough
SCORE_STEP = 5000  # contacts loaded, scored and stored per step of ensure_scored
NO_RULES = CampaignRules()


@dataclass(frozen=True)
class Recommended:
    item_id: int
    sku: str
    name: str
    url: str
    price: float
    image_url: str
    category: str
    score: float
    reason: str


@dataclass
class LookupMemo:
    """What one caller looking up many times in a row (a send batch, seconds long) keeps between its
    lookups: the best-sellers, the catalog rows read and the fallback lists built from them, so a
    later lookup reads only its contacts' stored rows. One per batch, never shared: the next batch
    sees a changed catalog or interactions table."""

    best: popular.BestSellers | None = None
    countries: set[str] = field(default_factory=set)
    catalog: dict[int, Any] = field(default_factory=dict)  # enabled items: rows with Item's columns
    looked_up: set[int] = field(default_factory=set)  # item ids read, enabled or not
    fallback_for: dict[str, list[Recommended]] = field(default_factory=dict)


def lookup(
    session: Session,
    model_version_id: int | None,
    contact_ids: Sequence[int],
    limit: int = 6,
    rules: CampaignRules | None = None,
    memo: LookupMemo | None = None,
    countries: Mapping[int, str] | None = None,
) -> dict[int, list[Recommended]]:
    """Precomputed recommendations for every contact id, topped up with best-sellers where short.

    `memo` keeps per-batch constants between calls; `countries` (contact id -> country, for every
    id) saves reading them when the caller has them already."""
    ids = list(dict.fromkeys(int(c) for c in contact_ids))
    if not ids:
        return {}
    version = registry.resolve(session, model_version_id)
    stored: dict[int, list[dict[str, Any]]] = {}
    if version is not None:
        for chunk in history.chunks(ids):
            rows = session.execute(
                sa.select(Recommendation.contact_id, Recommendation.items).where(
                    Recommendation.model_version_id == version.id, Recommendation.contact_id.in_(chunk)
                )
            )
            stored.update({int(cid): list(items or []) for cid, items in rows})
    return _assemble(session, ids, stored, limit, rules or NO_RULES, memo, countries)


def ensure_scored(
    session: Session,
    model_version_id: int | None,
    contact_ids: Sequence[int],
    max_age: timedelta | None = timedelta(days=1),
    now: datetime | None = None,
) -> int:
    """Score and store contacts without a row for this version (or with one older than `max_age`).

    Returns how many rows were written. Contacts with no history on the model's items get no row:
    the lookup serves them their country's best-sellers. With no champion and no version, returns 0.
    """
    version = registry.resolve(session, model_version_id)
    if version is None:
        return 0
    now = now or utcnow()
    ids = list(dict.fromkeys(int(c) for c in contact_ids))
    fresh: set[int] = set()
    for chunk in history.chunks(ids):
        query = sa.select(Recommendation.contact_id).where(
            Recommendation.model_version_id == version.id, Recommendation.contact_id.in_(chunk)
        )
        if max_age is not None:
            query = query.where(Recommendation.computed_at >= now - max_age)
        fresh.update(int(c) for c in session.scalars(query))
    todo = [c for c in ids if c not in fresh]
    if not todo:
        return 0
    model = registry.load_model(version)
    written = 0
    for start in range(0, len(todo), SCORE_STEP):
        step = todo[start : start + SCORE_STEP]
        scored = scoring.score_contacts(session, model, step, STORED_PER_CONTACT, now)
        names = _names(session, {s.because_item_id for e in scored.values() for s in e if s.because_item_id})
        for chunk in history.chunks(step):
            session.execute(
                sa.delete(Recommendation).where(
                    Recommendation.model_version_id == version.id, Recommendation.contact_id.in_(chunk)
                )
            )
        rows = [
            {
                "model_version_id": version.id,
                "contact_id": contact_id,
                "items": [_stored_entry(s, names) for s in entries],
                "computed_at": now,
            }
            for contact_id, entries in scored.items()
            if entries
        ]
        if rows:
            session.execute(sa.insert(Recommendation), rows)
        written += len(rows)
    session.flush()
    return written


def score_contact(
    session: Session,
    model_version_id: int | None,
    contact_id: int,
    limit: int = 6,
    rules: CampaignRules | None = None,
    now: datetime | None = None,
) -> list[Recommended]:
    """What this version would recommend to the contact right now; nothing is stored."""
    version = registry.resolve(session, model_version_id)
    stored: dict[int, list[dict[str, Any]]] = {}
    if version is not None:
        model = registry.load_model(version)
        scored = scoring.score_contacts(session, model, [contact_id], STORED_PER_CONTACT, now or utcnow())
        entries = scored.get(int(contact_id), [])
        names = _names(session, {s.because_item_id for s in entries if s.because_item_id})
        stored[int(contact_id)] = [_stored_entry(s, names) for s in entries]
    return _assemble(session, [int(contact_id)], stored, limit, rules or NO_RULES)[int(contact_id)]


def _stored_entry(scored: scoring.Scored, names: dict[int, str]) -> dict[str, Any]:
    if scored.own:
        reason = "you bought this before"
    elif scored.because_item_id is not None:
        reason = f"because you bought {names.get(scored.because_item_id) or 'a similar item'}"
    else:
        reason = "popular with customers like you"
    return {"item_id": scored.item_id, "score": scored.score, "reason": reason}


def _names(session: Session, item_ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in item_ids if i is not None]
    names: dict[int, str] = {}
    for chunk in history.chunks(wanted):
        names.update(
            {int(i): n for i, n in session.execute(sa.select(Item.id, Item.name).where(Item.id.in_(chunk)))}
        )
    return names


def _assemble(
    session: Session,
    ids: list[int],
    stored: dict[int, list[dict[str, Any]]],
    limit: int,
    rules: CampaignRules,
    memo: LookupMemo | None = None,
    countries: Mapping[int, str] | None = None,
) -> dict[int, list[Recommended]]:
    """Join the catalog (enabled items only), apply the rules, top up short lists with best-sellers."""
    memo = memo or LookupMemo()
    country_of = countries if countries is not None else history.countries(session, ids)
    needed = set(country_of.values())
    if memo.best is None or not needed <= memo.countries:
        memo.countries |= needed
        memo.best = popular.best_sellers(session, memo.countries)
        memo.fallback_for.clear()
    fallback = memo.best
    wanted: set[int] = {int(e["item_id"]) for entries in stored.values() for e in entries}
    for ranked in (fallback.overall, *fallback.by_country.values()):
        wanted.update(item_id for item_id, _ in ranked)
    catalog = memo.catalog
    for chunk in history.chunks(sorted(wanted - memo.looked_up)):
        catalog.update(
            {
                row.id: row
                for row in session.execute(
                    sa.select(*_ITEM_COLUMNS).where(Item.id.in_(chunk), Item.enabled.is_(True))
                )
            }
        )
        memo.looked_up.update(chunk)

    result: dict[int, list[Recommended]] = {}
    fallback_for = memo.fallback_for  # built once per country, not once per contact
    for contact_id in ids:
        country = country_of.get(contact_id, "")
        candidates = [
            _recommended(catalog[int(e["item_id"])], float(e.get("score", 0.0)), str(e.get("reason", "")))
            for e in stored.get(contact_id, [])
            if int(e["item_id"]) in catalog
        ]
        chosen = rules.apply(candidates, limit)
        if len(chosen) < limit:
            taken = {r.item_id for r in chosen}
            if country not in fallback_for:
                fallback_for[country] = _unique(
                    _recommended(catalog[item_id], score, reason)
                    for item_id, score, reason in _fallback_order(fallback, country)
                    if item_id in catalog
                )
            extra = [r for r in fallback_for[country] if r.item_id not in taken]
            chosen = rules.apply([*chosen, *extra], limit)
        result[contact_id] = chosen
    return result


_ITEM_COLUMNS = (Item.id, Item.sku, Item.name, Item.url, Item.price, Item.image_url, Item.category)


def _fallback_order(fallback: popular.BestSellers, country: str) -> list[tuple[int, float, str]]:
    """The country's best-sellers, then the overall ones, each with its reason."""
    ranked, reason = fallback.for_country(country)
    order = [(item_id, score, reason) for item_id, score in ranked]
    if ranked is not fallback.overall:
        order += [(item_id, score, "popular right now") for item_id, score in fallback.overall]
    return order


def _unique(recs: Any) -> list[Recommended]:
    seen: set[int] = set()
    out = []
    for rec in recs:
        if rec.item_id not in seen:
            seen.add(rec.item_id)
            out.append(rec)
    return out


def _recommended(item: Any, score: float, reason: str) -> Recommended:
    return Recommended(
        item_id=item.id,
        sku=item.sku,
        name=item.name,
        url=item.url,
        price=float(item.price),
        image_url=item.image_url,
        category=item.category,
        score=score,
        reason=reason,
    )
