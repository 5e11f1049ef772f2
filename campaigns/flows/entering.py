"""Set-based entering: many contacts into one flow in a few statements, not a few per contact.

`enter_many` applies the same rules as `campaigns.flows.triggers.enter` (the trigger key is seen
once per flow and contact; the flow's re-entry rule, `engine.may_enter`; the generation is the
contact's n-th entry) to a chunk of contacts: one query reads the chunk's previous journeys, one
multi-row insert (`ON CONFLICT DO NOTHING` on (flow, contact, trigger key)) writes the new ones.
Used by the CSV import (`enter_created`: one call per chunk, only when a `contact_created` flow is
active), the time-driven triggers and conversions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.flows.definition import FlowDefinition
from campaigns.flows.engine import may_enter
from models import ContactEvent, Flow, FlowEntry
from models.db import dialect_insert

log = logging.getLogger(__name__)
CHUNK = 1000  # rows per insert (SQLite's limit on bound parameters)
Candidate = tuple[int, str, dict[str, Any]]  # contact id, trigger key, properties


def listening(session: Session, event: str) -> list[Flow]:
    """The active flows whose trigger listens for `event`, in id order."""
    return list(
        session.scalars(
            sa.select(Flow).where(Flow.state == "active", Flow.trigger_event == event).order_by(Flow.id)
        )
    )


def enter_many(session: Session, flow: Flow, candidates: Iterable[Candidate], now: datetime) -> int:
    """Enter each (contact, trigger key) the rules let in, due now at the first step; the number
    entered. A contact appears once per call (its first candidate)."""
    definition = FlowDefinition.model_validate(flow.definition)
    first: dict[int, Candidate] = {}
    for candidate in candidates:
        first.setdefault(candidate[0], candidate)
    entered = 0
    items = list(first.values())
    for start in range(0, len(items), CHUNK):
        entered += _enter_chunk(session, flow, definition, items[start : start + CHUNK], now)
    return entered


def _enter_chunk(
    session: Session, flow: Flow, definition: FlowDefinition, chunk: Sequence[Candidate], now: datetime
) -> int:
    ids = [c[0] for c in chunk]
    previous = {
        row[0]: row[1:]
        for row in session.execute(
            sa.select(
                FlowEntry.contact_id,
                sa.func.count(),
                sa.func.max(FlowEntry.entered_at),
                sa.func.sum(sa.case((FlowEntry.state == "active", 1), else_=0)),
            )
            .where(FlowEntry.flow_id == flow.id, FlowEntry.contact_id.in_(ids))
            .group_by(FlowEntry.contact_id)
        )
    }
    seen = {
        (int(contact_id), str(key))
        for contact_id, key in session.execute(
            sa.select(FlowEntry.contact_id, FlowEntry.trigger_key).where(
                FlowEntry.flow_id == flow.id,
                FlowEntry.contact_id.in_([i for i in ids if i in previous]),
                FlowEntry.trigger_key.in_({c[1][:420] for c in chunk}),
            )
        ).all()
    }
    rule, first_step = definition.re_entry, definition.steps[0].id
    rows = []
    for contact_id, key, properties in chunk:
        count, last_at, active = previous.get(contact_id, (0, None, 0))
        if (contact_id, key[:420]) in seen:
            continue
        if not may_enter(rule.rule, rule.days, last_at, bool(active), now):
            continue
        rows.append(
            {
                "flow_id": flow.id,
                "contact_id": contact_id,
                "version": flow.version,
                "generation": int(count or 0) + 1,
                "trigger_key": key[:420],
                "entered_at": now,
                "step_id": first_step,
                "next_due_at": now,
                "state": "active",
                "properties": properties,
                "exit_reason": "",
                "attempts": 0,
                "last_error": "",
                "updated_at": now,
            }
        )
    if not rows:
        return 0
    inserted = session.execute(
        dialect_insert(session)(FlowEntry).values(rows).on_conflict_do_nothing().returning(FlowEntry.id)
    ).all()
    return len(inserted)


def enter_event(session: Session, event: str, candidates: Sequence[Candidate], now: datetime) -> int:
    """Enter the candidates into every active flow listening for `event`; a broken flow fails alone
    (in its own savepoint) and never stops what recorded the event."""
    entered = 0
    if not candidates:
        return 0
    for flow in listening(session, event):
        try:
            with session.begin_nested():
                entered += enter_many(session, flow, candidates, now)
        except Exception:
            log.exception("flow %s: %d contacts could not enter", flow.id, len(candidates))
    return entered


def enter_created(session: Session, contact_ids: Sequence[int], now: datetime) -> int:
    """Contacts an import created enter the `contact_created` flows, with the key contact creation
    elsewhere uses (`contact_created:<id>`), so a contact enters once whichever door it came in by."""
    from campaigns.flows.triggers import CONTACT_CREATED

    key = f"{CONTACT_CREATED}:{CONTACT_CREATED}:"
    return enter_event(session, CONTACT_CREATED, [(i, f"{key}{i}", {}) for i in contact_ids], now)


def any_listening(session: Session, event: str) -> bool:
    """Cheap check before gathering candidates: is an active flow listening for `event`?"""
    found = session.scalar(
        sa.select(Flow.id).where(Flow.state == "active", Flow.trigger_event == event).limit(1)
    )
    return found is not None


Purchase = tuple[int, str, dict[str, Any], datetime]  # contact id, event key, properties, occurred at


def record_purchases(session: Session, purchases: Sequence[Purchase], now: datetime) -> int:
    """Purchases seen elsewhere than the events API (a conversion from the tracking pixel, a purchase
    interaction imported into the catalog) as `purchase` contact events: stored once per key (one
    multi-row insert), journeys that exit on a purchase end, and `purchase` flows are entered
    set-based. Returns how many were new."""
    from campaigns.flows.definition import PURCHASE
    from campaigns.flows.triggers import exit_on_event

    fresh: list[tuple[int, str]] = []
    for start in range(0, len(purchases), CHUNK):
        rows = [
            {
                "contact_id": contact_id,
                "name": PURCHASE,
                "key": key[:300],
                "properties": properties,
                "occurred_at": occurred_at,
                "recorded_at": now,
            }
            for contact_id, key, properties, occurred_at in purchases[start : start + CHUNK]
        ]
        fresh += [
            (int(contact_id), str(key))
            for contact_id, key in session.execute(
                dialect_insert(session)(ContactEvent)
                .values(rows)
                .on_conflict_do_nothing()
                .returning(ContactEvent.contact_id, ContactEvent.key)
            ).all()
        ]
    if not fresh:
        return 0
    for contact_id in sorted({c for c, _key in fresh}):
        exit_on_event(session, contact_id, PURCHASE, now)
    if any_listening(session, PURCHASE):
        properties = {p[1][:300]: p[2] for p in purchases}
        enter_event(session, PURCHASE, [(c, f"{PURCHASE}:{k}", properties[k]) for c, k in fresh], now)
    return len(fresh)
