"""A tiny shop: two countries, six items, a few purchase histories, all worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from campaigns.recommender import popular, registry
from models import Contact, Interaction, Item

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Shop:
    items: dict[str, Item]
    contacts: dict[str, Contact]


def add_items(session: Session, names: list[str], created: datetime = NOW) -> dict[str, Item]:
    items = {}
    for n, name in enumerate(names):
        item = Item(
            sku=f"SKU-{name}",
            name=name,
            url=f"https://shop.test/{name}",
            price=float(n + 1),
            category="kitchen" if n % 2 == 0 else "garden",
            created_at=created + timedelta(minutes=n),
        )
        session.add(item)
        items[name] = item
    session.flush()
    return items


def buy(
    session: Session, contact: Contact, item: Item, days_ago: float = 10.0, kind: str = "purchase"
) -> None:
    session.add(
        Interaction(
            contact_id=contact.id, item_id=item.id, kind=kind, occurred_at=NOW - timedelta(days=days_ago)
        )
    )


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    popular.forget_cached()
    registry.forget_cached()


@pytest.fixture()
def shop(session: Session) -> Shop:
    """Items A..F. UK buyers love A and B (and C, D go together); France loves E."""
    items = add_items(session, ["A", "B", "C", "D", "E", "F"])
    contacts = {}
    for name, country in [
        ("uk1", "United Kingdom"),
        ("uk2", "United Kingdom"),
        ("uk3", "United Kingdom"),
        ("fr1", "France"),
        ("fr2", "France"),
        ("nowhere", ""),
        ("cold_fr", "France"),
    ]:
        contact = Contact(email=f"{name}@example.com", name=name, country=country)
        session.add(contact)
        contacts[name] = contact
    session.flush()
    for name in ("uk1", "uk2", "uk3"):
        buy(session, contacts[name], items["A"])
        buy(session, contacts[name], items["B"])
    buy(session, contacts["uk1"], items["C"])
    buy(session, contacts["uk1"], items["D"])
    buy(session, contacts["uk2"], items["C"])
    buy(session, contacts["uk2"], items["D"])
    buy(session, contacts["uk3"], items["C"])
    for name in ("fr1", "fr2"):
        buy(session, contacts[name], items["E"])
    buy(session, contacts["fr1"], items["F"])
    session.commit()
    return Shop(items=items, contacts=contacts)
