"""The feedback loop: campaign clicks and conversions on recommended items become interactions.

Chosen representation: the ingest worker stores `Event` rows (kind click or conversion, with the
item_id of the clicked link); `collect` copies the human ones into `Interaction` rows with
`source = "campaign:<campaign_id>"` and `reference = "event:<event_id>"` (a click becomes a `click`,
a conversion a `purchase`). Every training run calls it first, so the next model learns from what
contacts did with the last one's emails; it is idempotent (an event is copied once, whenever it runs),
and segments and reports see the same interactions as the recommender.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Contact, Event, Interaction, Item

EVENT_TO_INTERACTION = {"click": "click", "conversion": "purchase"}
REFERENCE_PREFIX = "event:"


def collect(session: Session) -> int:
    """Copy not-yet-copied campaign clicks and conversions into interactions; returns how many. Flushes."""
    copied = {
        ref
        for ref in session.scalars(
            sa.select(Interaction.reference).where(
                Interaction.source.like("campaign:%"), Interaction.reference.like(f"{REFERENCE_PREFIX}%")
            )
        )
        if ref
    }
    events = session.execute(
        sa.select(
            Event.id,
            Event.kind,
            Event.campaign_id,
            Event.contact_id,
            Event.item_id,
            Event.value,
            Event.occurred_at,
        )
        .join(Item, Item.id == Event.item_id)
        .join(Contact, Contact.id == Event.contact_id)
        .where(Event.kind.in_(tuple(EVENT_TO_INTERACTION)), Event.machine.is_(False))
        .order_by(Event.id)
    )
    rows = [
        {
            "contact_id": contact_id,
            "item_id": item_id,
            "kind": EVENT_TO_INTERACTION[kind],
            "quantity": 1.0,
            "value": float(value or 0.0),
            "occurred_at": occurred_at,
            "source": f"campaign:{campaign_id}" if campaign_id is not None else "campaign:",
            "reference": f"{REFERENCE_PREFIX}{event_id}",
        }
        for event_id, kind, campaign_id, contact_id, item_id, value, occurred_at in events
        if f"{REFERENCE_PREFIX}{event_id}" not in copied
    ]
    if rows:
        session.execute(sa.insert(Interaction), rows)
        session.flush()
    return len(rows)
