"""What the engine asks the database about one entry: has an exit event happened since it entered,
does a branch's condition hold. Opens and clicks count on this flow's own emails to this journey
(its step campaigns of the entry's generation); a purchase is a `purchase` event or a conversion
recorded on any email since entry; the event that started the journey never counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.rules import segment_filter
from campaigns.flows.definition import PURCHASE, BranchStep, EventCondition, FlowDefinition
from models import Contact, ContactEvent, FlowEntry, FlowStepCampaign, Send

FLOW_EMAIL_EVENTS = {"opened": Send.opened_at, "clicked": Send.clicked_at}


def happened(session: Session, entry: FlowEntry, event: str) -> bool:
    """Whether `event` (opened, clicked, purchased/purchase, or a custom name) happened since entry."""
    if event in FLOW_EMAIL_EVENTS:
        column = FLOW_EMAIL_EVENTS[event]
        mine = sa.select(FlowStepCampaign.campaign_id).where(
            FlowStepCampaign.flow_id == entry.flow_id, FlowStepCampaign.generation == entry.generation
        )
        return _exists(
            session,
            sa.select(Send.id).where(
                Send.contact_id == entry.contact_id, Send.campaign_id.in_(mine), column >= entry.entered_at
            ),
        )
    name = PURCHASE if event == "purchased" else event
    if name == PURCHASE and _exists(
        session,
        sa.select(Send.id).where(Send.contact_id == entry.contact_id, Send.converted_at >= entry.entered_at),
    ):
        return True
    return _exists(
        session,
        sa.select(ContactEvent.id).where(
            ContactEvent.contact_id == entry.contact_id,
            ContactEvent.name == name,
            ContactEvent.occurred_at >= entry.entered_at,
            ContactEvent.name + ":" + ContactEvent.key != entry.trigger_key,
        ),
    )


def exit_seen(session: Session, entry: FlowEntry, definition: FlowDefinition) -> str | None:
    for condition in definition.exit_conditions:
        if happened(session, entry, condition.event):
            return condition.event
    return None


def holds(session: Session, entry: FlowEntry, step: BranchStep, now: datetime) -> bool:
    condition = step.condition
    if isinstance(condition, EventCondition):
        return happened(session, entry, condition.event)
    query = sa.select(Contact.id).where(
        Contact.id == entry.contact_id, segment_filter(condition.segment_rules, now)
    )
    return _exists(session, query)


def _exists(session: Session, query: sa.Select[Any]) -> bool:
    return session.scalar(query.limit(1)) is not None


# Set-based forms for the scheduler's batches (campaigns.flows.bulk): one query per fact for many
# entries, with the same meaning as `happened` and `holds` above.


def happened_many(session: Session, entry_ids: list[int], event: str) -> set[int]:
    """The entries among `entry_ids` for which `event` happened since entry."""
    if not entry_ids:
        return set()
    mine = FlowEntry.id.in_(entry_ids)
    if event in FLOW_EMAIL_EVENTS:
        column = FLOW_EMAIL_EVENTS[event]
        query = (
            sa.select(FlowEntry.id)
            .join(Send, Send.contact_id == FlowEntry.contact_id)
            .join(
                FlowStepCampaign,
                sa.and_(
                    FlowStepCampaign.campaign_id == Send.campaign_id,
                    FlowStepCampaign.flow_id == FlowEntry.flow_id,
                    FlowStepCampaign.generation == FlowEntry.generation,
                ),
            )
            .where(mine, column >= FlowEntry.entered_at)
        )
        return set(session.scalars(query.distinct()))
    name = PURCHASE if event == "purchased" else event
    found: set[int] = set()
    if name == PURCHASE:
        converted = (
            sa.select(FlowEntry.id)
            .join(Send, Send.contact_id == FlowEntry.contact_id)
            .where(mine, Send.converted_at >= FlowEntry.entered_at)
        )
        found |= set(session.scalars(converted.distinct()))
    posted = (
        sa.select(FlowEntry.id)
        .join(ContactEvent, ContactEvent.contact_id == FlowEntry.contact_id)
        .where(
            mine,
            ContactEvent.name == name,
            ContactEvent.occurred_at >= FlowEntry.entered_at,
            ContactEvent.name + ":" + ContactEvent.key != FlowEntry.trigger_key,
        )
    )
    return found | set(session.scalars(posted.distinct()))


def holds_many(session: Session, entries: list[FlowEntry], step: BranchStep, now: datetime) -> set[int]:
    """The entries (all at `step`) for which the branch's condition holds."""
    condition = step.condition
    if isinstance(condition, EventCondition):
        return happened_many(session, [e.id for e in entries], condition.event)
    inside = set(
        session.scalars(
            sa.select(Contact.id).where(
                Contact.id.in_({e.contact_id for e in entries}), segment_filter(condition.segment_rules, now)
            )
        )
    )
    return {e.id for e in entries if e.contact_id in inside}
