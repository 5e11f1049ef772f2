"""Small data for tests, made in the test: contacts, templates, campaigns."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.campaign_records import create_campaign
from campaigns.content.templates import save_template
from models import Campaign, Contact, Interaction, Item, Template

LAYOUT = '<html><body><h1>Hi {{ contact.first_name }}</h1>{{ content }}<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
CONTROL = '<p>Our best sellers this week: <a href="https://shop.example/best">shop now</a></p>'
AI = (
    '{% for r in recommendations %}<p><a href="{{ r.url }}">{{ r.name }}</a> {{ r.price }} '
    "<small>{{ r.reason }}</small></p>{% endfor %}"
)


def add_contacts(session: Session, n: int, start: int = 0, **fields: Any) -> list[int]:
    rows = [
        {
            "email": f"person{start + i}@example.com",
            "name": f"Person {start + i}",
            "country": "United Kingdom",
            "attributes": {"plan": "pro" if i % 2 else "free"},
            **fields,
        }
        for i in range(n)
    ]
    session.execute(sa.insert(Contact), rows)
    session.commit()
    return list(session.scalars(sa.select(Contact.id).order_by(Contact.id)))[-n:]


def add_template(session: Session, name: str = "Weekly", **overrides: str) -> Template:
    fields = {
        "name": name,
        "subject": "Picks for {{ contact.first_name }}",
        "layout_html": LAYOUT,
        "control_html": CONTROL,
        "ai_html": AI,
        **overrides,
    }
    template = save_template(session, fields)
    session.commit()
    return template


def add_campaign(session: Session, template_id: int, **payload: Any) -> Campaign:
    campaign = create_campaign(
        session,
        {
            "name": "Weekly picks",
            "template_id": template_id,
            "from_email": "shop@example.com",
            "from_name": "The Shop",
            **payload,
        },
        actor="test@example.com",
    )
    session.commit()
    return campaign


def add_catalog(session: Session, contact_ids: list[int], n_items: int = 12) -> list[int]:
    """Items in two categories and a purchase history, so every recommender has something to say."""
    session.execute(
        sa.insert(Item),
        [
            {
                "sku": f"SKU{i}",
                "name": f"Item {i}",
                "url": f"https://shop.example/items/SKU{i}",
                "price": 5.0 + i,
                "category": "kitchen" if i % 2 else "garden",
            }
            for i in range(n_items)
        ],
    )
    item_ids = list(session.scalars(sa.select(Item.id).order_by(Item.id)))
    session.execute(
        sa.insert(Interaction),
        [
            {
                "contact_id": c,
                "item_id": item_ids[(k * 7 + j) % len(item_ids)],
                "kind": "purchase",
                "quantity": 1.0,
                "value": 10.0,
            }
            for k, c in enumerate(contact_ids)
            for j in range(3)
        ],
    )
    session.commit()
    return item_ids


def add_matured_sends(
    session: Session,
    rollout_id: int,
    n: int = 1,
    sent_at: Any = None,
    arms: tuple[str, ...] = ("treatment", "control"),
) -> None:
    """`n` sent rows per arm in the rollout's current stage, mailed `sent_at` (default: four days ago,
    matured for every metric), so the state machine sees matured evidence for a gate-less stage."""
    from datetime import UTC, datetime, timedelta

    from models import Rollout, Send

    rollout = session.get(Rollout, rollout_id)
    assert rollout is not None
    session.refresh(rollout)
    campaign_id = session.scalar(sa.select(Campaign.id).order_by(Campaign.id.desc()).limit(1))
    if campaign_id is None:
        campaign_id = add_campaign(session, add_template(session, name=f"Matured {rollout_id}").id).id
    start = int(session.scalar(sa.select(sa.func.count()).select_from(Contact)) or 0)
    contacts = add_contacts(session, n * len(arms), start=start + 10_000)
    sent_at = sent_at or datetime.now(UTC) - timedelta(hours=96)
    session.add_all(
        Send(campaign_id=campaign_id, contact_id=c, rollout_id=rollout_id, stage_index=rollout.stage_index,
             state="sent", arm=arms[i % len(arms)], sent_at=sent_at)
        for i, c in enumerate(contacts)
    )  # fmt: skip
    session.commit()
