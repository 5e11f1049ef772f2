"""Reading contacts' interaction histories and countries from the database, in few, chunked queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.recommender.matrix import KIND_WEIGHTS, InteractionLog
from models import Contact, Interaction

CHUNK = 1000  # ids per IN (...) list: well inside every backend's parameter limit


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def countries(session: Session, contact_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunks(contact_ids):
        rows = session.execute(sa.select(Contact.id, Contact.country).where(Contact.id.in_(chunk)))
        found.update({int(cid): country or "" for cid, country in rows})
    return found


def histories(
    session: Session,
    contact_ids: Sequence[int],
    now: datetime,
    since: datetime | None = None,
) -> InteractionLog:
    """Every interaction of these contacts (optionally from `since` on), ages measured from `now`."""
    users: list[int] = []
    items: list[int] = []
    kinds: list[str] = []
    ages: list[float] = []
    for chunk in chunks(contact_ids):
        query = sa.select(
            Interaction.contact_id, Interaction.item_id, Interaction.kind, Interaction.occurred_at
        ).where(Interaction.contact_id.in_(chunk), Interaction.kind.in_(tuple(KIND_WEIGHTS)))
        if since is not None:
            query = query.where(Interaction.occurred_at >= since)
        for contact_id, item_id, kind, occurred_at in session.execute(query):
            users.append(contact_id)
            items.append(item_id)
            kinds.append(kind)
            ages.append((now - occurred_at).total_seconds() / 86400.0)
    return InteractionLog.from_rows(users, items, kinds, ages)


def training_log(
    session: Session, start: datetime | None, end: datetime
) -> tuple[InteractionLog, dict[int, str]]:
    """All interactions in [start, end), ages measured from `end`, and the countries of their contacts."""
    query = (
        sa.select(
            Interaction.contact_id,
            Interaction.item_id,
            Interaction.kind,
            Interaction.occurred_at,
            Contact.country,
        )
        .join(Contact, Contact.id == Interaction.contact_id)
        .where(Interaction.occurred_at < end, Interaction.kind.in_(tuple(KIND_WEIGHTS)))
    )
    if start is not None:
        query = query.where(Interaction.occurred_at >= start)
    users: list[int] = []
    items: list[int] = []
    kinds: list[str] = []
    ages: list[float] = []
    country_of: dict[int, str] = {}
    for contact_id, item_id, kind, occurred_at, country in session.execute(query):
        users.append(contact_id)
        items.append(item_id)
        kinds.append(kind)
        ages.append((end - occurred_at).total_seconds() / 86400.0)
        country_of[contact_id] = country or ""
    return InteractionLog.from_rows(users, items, kinds, ages), country_of
