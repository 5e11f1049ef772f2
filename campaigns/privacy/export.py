"""Everything held about one person, as one JSON document (a data subject access request)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts.records import get_contact
from campaigns.privacy import audit, consent
from models import (
    Bounce,
    Campaign,
    Event,
    Interaction,
    Item,
    Recommendation,
    Send,
    ShadowRender,
    Suppression,
)

FORMAT_VERSION = 1
PROFILE = ("id", "email", "name", "country", "timezone", "consent", "status", "external_id",
           "created_at", "updated_at", "unsubscribed_at")  # fmt: skip
SEND = ("id", "campaign_id", "wave_id", "rollout_id", "stage_index", "arm", "content", "model_version_id",
        "state", "message_id", "queued_at", "sent_at", "opened_at", "clicked_at", "converted_at", "revenue",
        "unsubscribed_at", "complained_at", "bounced_at")  # fmt: skip
EVENT = ("id", "kind", "send_id", "campaign_id", "arm", "link_id", "item_id", "value", "machine", "reason",
         "user_agent", "ip", "occurred_at")  # fmt: skip


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(obj: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: _iso(getattr(obj, c)) for c in columns}


def person_data(session: Session, contact_id: int) -> dict[str, Any]:
    contact = get_contact(session, contact_id)
    sends = session.execute(
        sa.select(Send, Campaign.name)
        .join(Campaign, Campaign.id == Send.campaign_id)
        .where(Send.contact_id == contact_id)
        .order_by(Send.id)
    ).all()
    send_ids = [s.id for s, _ in sends]
    items = {
        i.id: i
        for i in session.scalars(
            sa.select(Item).where(
                Item.id.in_(sa.select(Interaction.item_id).where(Interaction.contact_id == contact_id))
            )
        )
    }
    recommendations = list(
        session.scalars(sa.select(Recommendation).where(Recommendation.contact_id == contact_id))
    )
    shown_ids = {r["item_id"] for rec in recommendations for r in rec.items if isinstance(r, dict)}
    missing = shown_ids - set(items)
    if missing:
        items.update({i.id: i for i in session.scalars(sa.select(Item).where(Item.id.in_(missing)))})
    document = {
        "format": f"mailramp person data v{FORMAT_VERSION}",
        "profile": _row(contact, PROFILE),
        "attributes": contact.attributes,
        "suppressed": session.scalar(sa.select(Suppression.reason).where(Suppression.email == contact.email)),
        "consent_history": [consent.record_json(r) for r in consent.history(session, contact_id)],
        "sends": [
            {
                "campaign": name,
                **_row(send, SEND),
            }
            for send, name in sends
        ],
        "events": [
            _row(e, EVENT)
            for e in session.scalars(
                sa.select(Event)
                .where(sa.or_(Event.contact_id == contact_id, Event.send_id.in_(send_ids)))
                .order_by(Event.id)
            )
        ],
        "interactions": [
            {
                **_row(i, ("kind", "quantity", "value", "occurred_at", "source", "reference")),
                "item": {"sku": items[i.item_id].sku, "name": items[i.item_id].name}
                if i.item_id in items
                else None,
            }
            for i in session.scalars(
                sa.select(Interaction).where(Interaction.contact_id == contact_id).order_by(Interaction.id)
            )
        ],
        "recommendations": [
            {
                "model_version_id": rec.model_version_id,
                "computed_at": _iso(rec.computed_at),
                "items": [
                    {**r, "name": items[r["item_id"]].name if r.get("item_id") in items else None}
                    for r in rec.items
                    if isinstance(r, dict)
                ],
            }
            for rec in recommendations
        ],
        "bounces": [
            _row(b, ("kind", "source", "send_id", "detail", "created_at"))
            for b in session.scalars(
                sa.select(Bounce)
                .where(
                    sa.or_(
                        Bounce.email == contact.email,
                        Bounce.send_id.in_(send_ids) if send_ids else sa.false(),
                    )
                )
                .order_by(Bounce.id)
            )
        ],
        "shadow_renders": [
            _row(r, ("send_id", "rollout_id", "item_ids", "latency_ms", "error", "created_at"))
            for r in session.scalars(
                sa.select(ShadowRender).where(ShadowRender.send_id.in_(send_ids)).order_by(ShadowRender.id)
            )
        ],
        "audit_pseudonym": audit.contact_ref(contact_id),
    }
    audit.record(session, "export", "contact", audit.contact_ref(contact_id), summary="person data exported")
    return document
