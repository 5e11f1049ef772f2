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
