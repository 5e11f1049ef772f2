"""Event-driven triggers and exits: where an event about a contact is recorded, in the same
transaction, it enters the contact into the active flows it triggers and ends the journeys it exits.

- `record_event` stores a `ContactEvent` (unique on its key: an event posted twice acts once), then
  `exit_on_event` and `enter_flows`. Called by contact creation (campaigns.contacts.records), double
  opt-in confirmation (campaigns.privacy.signup) and `POST /api/v1/contact-events`.
- `enter` is the one door into a flow (also for the time-driven triggers, campaigns.flows.periodic):
  unique (flow, contact, trigger key) makes it idempotent, and the flow's re-entry rule
  (campaigns.flows.engine.may_enter) decides about a new key. Each entry records its generation
  (the contact's n-th entry), which names the hidden campaign its sends go through.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.flows.definition import PURCHASE, FlowDefinition
from campaigns.flows.engine import may_enter
from models import ContactEvent, Flow, FlowEntry, FlowVersion, Send, utcnow
from models.db import dialect_insert

log = logging.getLogger(__name__)
CONTACT_CREATED = "contact_created"
CONTACT_CONFIRMED = "contact_confirmed"


def definition_of(session: Session, flow_id: int, version: int) -> FlowDefinition:
    stored = session.scalar(
        sa.select(FlowVersion.definition).where(
            FlowVersion.flow_id == flow_id, FlowVersion.version == version
        )
    )
    if stored is None:
        raise LookupError(f"flow {flow_id} has no version {version}")
    return FlowDefinition.model_validate(stored)


def record_event(
    session: Session,
    contact_id: int,
    name: str,
    *,
    key: str | None = None,
    properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Store the event, end the journeys it exits, enter the flows it triggers. False when an event
    with this key was recorded before (nothing happens again)."""
    now = utcnow()
    key = key or f"{name}:{contact_id}:{uuid.uuid4().hex}"
    inserted = session.execute(
        dialect_insert(session)(ContactEvent)
        .values(
            contact_id=contact_id,
            name=name,
            key=key,
            properties=properties or {},
            occurred_at=occurred_at or now,
            recorded_at=now,
        )
        .on_conflict_do_nothing()
        .returning(ContactEvent.id)
    ).scalar()
    if inserted is None:  # seen before (rowcount is not reliable here on every driver)
        return False
    exit_on_event(session, contact_id, name, now)
    enter_flows(session, contact_id, name, f"{name}:{key}", properties or {}, now)
    return True


def enter_flows(
    session: Session, contact_id: int, event: str, trigger_key: str, properties: dict[str, Any], now: datetime
) -> list[FlowEntry]:
    """Enter the contact into every active flow whose trigger listens for `event`."""
    flows = session.scalars(
        sa.select(Flow).where(Flow.state == "active", Flow.trigger_event == event).order_by(Flow.id)
    ).all()
    entries = []
    for flow in flows:
        try:  # a broken flow never stops what recorded the event (a signup, a contact's creation)
            entry = enter(session, flow, contact_id, trigger_key, properties, now)
        except Exception:
            log.exception("flow %s: contact %s could not enter", flow.id, contact_id)
            continue
        if entry is not None:
            entries.append(entry)
    return entries


def enter(
    session: Session,
    flow: Flow,
    contact_id: int,
    trigger_key: str,
    properties: dict[str, Any],
    now: datetime,
) -> FlowEntry | None:
    """A new journey at the flow's first step, due now; None when the key was seen or re-entry forbids."""
    definition = FlowDefinition.model_validate(flow.definition)
    previous = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.max(FlowEntry.entered_at),
            sa.func.sum(sa.case((FlowEntry.state == "active", 1), else_=0)),
            sa.func.sum(sa.case((FlowEntry.trigger_key == trigger_key, 1), else_=0)),
        ).where(FlowEntry.flow_id == flow.id, FlowEntry.contact_id == contact_id)
    ).one()
    count, last_at, active, same_key = int(previous[0] or 0), previous[1], previous[2], previous[3]
    if same_key:
        return None
    rule = definition.re_entry
    if not may_enter(rule.rule, rule.days, last_at, bool(active), now):
        return None
    entry = FlowEntry(
        flow_id=flow.id,
        contact_id=contact_id,
        version=flow.version,
        generation=count + 1,
        trigger_key=trigger_key[:420],
        entered_at=now,
        step_id=definition.steps[0].id,
        next_due_at=now,
        state="active",
        properties=properties,
    )
    try:
        with session.begin_nested():  # another worker entered the same event first: not twice
            session.add(entry)
            session.flush()
    except IntegrityError:
        return None
    return entry


def _matches(condition: str, event: str) -> bool:
    return condition == event or (condition in (PURCHASE, "purchased") and event == PURCHASE)


def exit_on_event(session: Session, contact_id: int, event: str, now: datetime) -> int:
    """End the contact's active journeys whose flow exits on `event`; a send they queued and that
    has not gone out yet is skipped."""
    # a journey whose last step queued a send is `completed` but not over until that send goes out
    queued = sa.select(Send.id).where(Send.id == FlowEntry.last_send_id, Send.state == "queued").exists()
    entries = session.scalars(
        sa.select(FlowEntry).where(
            FlowEntry.contact_id == contact_id,
            sa.or_(FlowEntry.state == "active", sa.and_(FlowEntry.state == "completed", queued)),
        )
    ).all()
    ended = 0
    for entry in entries:
        try:
            definition = definition_of(session, entry.flow_id, entry.version)
        except Exception:  # a broken version: the scheduler fails the entry alone
            log.exception("flow entry %s: its definition cannot be read", entry.id)
            continue
        if any(_matches(c.event, event) for c in definition.exit_conditions):
            finish(session, entry, "exited", f"exit condition: {event}", now, withdraw=True)
            ended += 1
    return ended


def finish(
    session: Session, entry: FlowEntry, state: str, reason: str, now: datetime, *, withdraw: bool = False
) -> None:
    """End the journey. `withdraw`: its send not gone out yet is skipped (an exit condition, an
    archived flow); an exit step or the last step lets it go."""
    entry.state, entry.exit_reason, entry.finished_at, entry.next_due_at = state, reason[:300], now, None
    if withdraw and entry.last_send_id is not None:
        session.execute(
            sa.update(Send)
            .where(Send.id == entry.last_send_id, Send.state == "queued")
            .values(state="skipped", error=f"flow journey ended: {reason}"[:2000])
            .execution_options(synchronize_session=False)
        )
