"""The demo workspace: contacts, catalog and purchase history to try the whole loop on.

From the real UCI Online Retail file when it is there (`data_path`, e.g.
../shared/data/online_retail.csv.gz): one contact per CustomerID with a synthetic but stable
address (customer-12345@demo.mailramp.test), one item per StockCode, one interaction per invoice
line, at the file's own dates (2010-12-01 .. 2011-12-09). Otherwise a seeded synthetic generator
of the same shape (`campaigns.demo.synthetic`), dated up to `now`.

Rows are written with bulk INSERTs in large batches: the full Online Retail file takes seconds,
not minutes. The caller commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import DEMO_DOMAIN
from campaigns.catalog.items import categorize
from campaigns.demo.retail import DemoData, read_online_retail
from campaigns.imports.stream import analyze, bulk_insert
from models import Contact, Interaction, Item, Segment, Template, utcnow

SHOP_URL = "https://shop.example/items/"
BATCH = 20_000
TIMEZONES = {
    "United Kingdom": "Europe/London", "Germany": "Europe/Berlin", "France": "Europe/Paris",
    "EIRE": "Europe/Dublin", "Spain": "Europe/Madrid", "Netherlands": "Europe/Amsterdam",
    "Belgium": "Europe/Brussels", "Switzerland": "Europe/Zurich", "Portugal": "Europe/Lisbon",
    "Australia": "Australia/Sydney", "Norway": "Europe/Oslo", "Italy": "Europe/Rome",
    "Channel Islands": "Europe/Jersey", "Finland": "Europe/Helsinki", "Cyprus": "Asia/Nicosia",
    "Sweden": "Europe/Stockholm", "Austria": "Europe/Vienna", "Denmark": "Europe/Copenhagen",
    "Japan": "Asia/Tokyo", "Poland": "Europe/Warsaw", "Israel": "Asia/Jerusalem",
    "USA": "America/New_York", "Hong Kong": "Asia/Hong_Kong", "Singapore": "Asia/Singapore",
    "Iceland": "Atlantic/Reykjavik", "Canada": "America/Toronto", "Greece": "Europe/Athens",
    "Malta": "Europe/Malta", "United Arab Emirates": "Asia/Dubai", "European Community": "Europe/Brussels",
    "RSA": "Africa/Johannesburg", "Lebanon": "Asia/Beirut", "Lithuania": "Europe/Vilnius",
    "Brazil": "America/Sao_Paulo", "Czech Republic": "Europe/Prague", "Bahrain": "Asia/Bahrain",
    "Saudi Arabia": "Asia/Riyadh",
}  # fmt: skip

TEMPLATE_NAME = "Demo: picks for you"
DEMO_SEGMENT = "Demo contacts (simulated)"  # the story's audience: the demo's own contacts only
DEMO_SEGMENT_NAMES = (
    DEMO_SEGMENT, "Beta testers", "UK customers", "Gold tier", "Christmas shoppers", "Candle lovers, recent",
    "Lapsed customers", "Regulars", "Big spenders", "Europe, not UK",
)  # fmt: skip
TEMPLATE = {
    "subject": "{{ contact.first_name or 'Hello' }}, a few things we think you'll like",
    "layout_html": (
        '<div style="font-family: sans-serif; max-width: 600px; margin: auto">'
        "<h1>Little Shop of Gifts</h1>{{ content }}"
        '<p style="color: #888; font-size: 12px">You get this email because you shop with us.</p></div>'
    ),
    "control_html": (
        "<p>Hello {{ contact.first_name or 'there' }},</p>"
        "<p>Our new season's gifts, candles and kitchenware are in.</p>"
        '<p><a href="https://shop.example/new">See what is new</a></p>'
    ),
    "ai_html": (
        "<p>Hello {{ contact.first_name or 'there' }}, picked for you:</p><ul>"
        "{% for item in recommendations %}<li>"
        '{% if item.image_url %}<img src="{{ item.image_url }}" alt="" width="80"> {% endif %}'
        '<a href="{{ item.url }}">{{ item.name }}</a> - £{{ "%.2f"|format(item.price) }}'
        "{% if item.reason %}<br><small>{{ item.reason }}</small>{% endif %}</li>{% endfor %}</ul>"
        '<p><a href="https://shop.example/new">See everything new</a></p>'
    ),
}


@dataclass
class DemoSummary:
    source: str  # online_retail | synthetic | existing
    contacts: int = 0
    items: int = 0
    interactions: int = 0
    segments: list[str] = field(default_factory=list)
    template: str = ""


def demo_exists(session: Session) -> bool:
    return session.scalar(sa.select(Contact.id).limit(1)) is not None


def _demo_contacts_exist(session: Session) -> bool:
    query = sa.select(Contact.id).where(Contact.email.like(f"%@{DEMO_DOMAIN}")).limit(1)
    return session.scalar(query) is not None


def build_demo(
    session: Session,
    data_path: str | None,
    *,
    seed: int = 20111209,
    now: datetime | None = None,
    max_rows: int | None = None,
    force: bool = False,
    synthetic_contacts: int = 3000,
) -> DemoSummary:
    """Fill an empty workspace (does nothing when contacts exist, unless `force`).

    `max_rows` reads only the first rows of the Online Retail file (for quick trials);
    `synthetic_contacts` sizes the generator (items: a quarter of that, at least 50).
    """
    if (demo_exists(session) and not force) or _demo_contacts_exist(session):
        return DemoSummary(source="existing")
    now = now or utcnow()
    if data_path and Path(data_path).is_file():
        summary = _from_online_retail(session, Path(data_path), seed, max_rows)
        lapsed: dict[str, Any] = {"no_purchase_since": {"date": "2011-09-01"}, "bought_before": True}
        recent: dict[str, Any] = {"since": "2011-09-01"}
        big_spend = 2000
    else:
        from campaigns.demo.synthetic import generate

        data = generate(
            seed=seed, now=now, n_contacts=synthetic_contacts, n_items=max(50, synthetic_contacts // 4)
        )
        summary = _write(session, data, seed)
        summary.source = "synthetic"
        lapsed = {"no_purchase_since": {"days": 90}, "bought_before": True}
        recent = {"within_days": 90}
        big_spend = 500
    analyze(session, ("contacts", "items", "interactions"))
    summary.segments = _demo_segments(session, lapsed, recent, big_spend)
    summary.template = _demo_template(session)
    session.flush()
    return summary


def _from_online_retail(session: Session, path: Path, seed: int, max_rows: int | None) -> DemoSummary:
    summary = _write(session, read_online_retail(path, max_rows), seed)
    summary.source = "online_retail"
    return summary


def _unit(seed: int, key: str, salt: str) -> float:
    """A stable number in [0, 1) per (seed, key, salt): demo attributes survive a rebuild."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _write(session: Session, data: DemoData, seed: int) -> DemoSummary:
    by_spend = sorted(data.customers, key=lambda k: -data.customers[k]["spend"])
    rank = {key: i / max(len(by_spend), 1) for i, key in enumerate(by_spend)}
    contacts = []
    for key, info in data.customers.items():
        status_draw = _unit(seed, key, "status")
        status = "unsubscribed" if status_draw < 0.01 else "bounced" if status_draw < 0.015 else "active"
        tier = "gold" if rank[key] < 0.1 else "silver" if rank[key] < 0.4 else "bronze"
        contacts.append(
            {
                "email": f"customer-{key}@{DEMO_DOMAIN}".lower(),
                "name": f"Customer {key}",
                "external_id": key,
                "country": info["country"][:100],
                "timezone": TIMEZONES.get(info["country"], "UTC"),
                "consent": _unit(seed, key, "consent") >= 0.03,
                "status": status,
                "attributes": {"beta": _unit(seed, key, "beta") < 0.02, "tier": tier},
                "created_at": info["first_seen"],
                "updated_at": info["first_seen"],
                "unsubscribed_at": info["first_seen"] if status == "unsubscribed" else None,
            }
        )
    _insert(session, Contact, contacts)
    known = set(session.scalars(sa.select(Item.sku)))  # a catalog already there wins
    items = [
        {
            "sku": sku,
            "name": info["name"],
            "url": SHOP_URL + sku,
            "price": info["price"],
            "image_url": "",
            "category": categorize(info["name"]),
            "enabled": True,
            "created_at": info["first_seen"],
        }
        for sku, info in data.items.items()
        if sku not in known
    ]
    _insert(session, Item, items)
    contact_ids = dict(
        session.execute(
            sa.select(Contact.external_id, Contact.id).where(Contact.email.like(f"%@{DEMO_DOMAIN}"))
        ).all()
    )
    item_ids = dict(session.execute(sa.select(Item.sku, Item.id)).all())
    records = (
        {
            "contact_id": contact_ids[customer],
            "item_id": item_ids[sku],
            "kind": kind,
            "quantity": quantity,
            "value": value,
            "occurred_at": at,
            "source": "import",
            "reference": reference,
        }
        for customer, sku, kind, quantity, value, at, reference in data.lines
    )
    _insert(session, Interaction, records)
    return DemoSummary(source="", contacts=len(contacts), items=len(items), interactions=len(data.lines))


def _insert(session: Session, model: Any, rows: Iterable[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            bulk_insert(session, model, batch)
            batch = []
    bulk_insert(session, model, batch)


def _demo_segments(
    session: Session, lapsed: dict[str, Any], recent: dict[str, Any], big_spend: float
) -> list[str]:
    wanted = {
        DEMO_SEGMENT: (
            "The demo's own contacts: the story's campaigns never reach anyone else",
            {"field": "email", "op": "contains", "value": f"@{DEMO_DOMAIN}"},
        ),
        "Beta testers": (
            "Contacts in the beta programme (about 2%)",
            {"field": "attributes.beta", "value": True},
        ),
        "UK customers": ("", {"field": "country", "value": "United Kingdom"}),
        "Gold tier": ("The top 10% by spend", {"field": "attributes.tier", "value": "gold"}),
        "Christmas shoppers": ("Bought anything Christmassy", {"purchased": {"category": "christmas"}}),
        "Candle lovers, recent": (
            "Bought candles or lights lately",
            {"purchased": {"category": "candles & lights", **recent}},
        ),
        "Lapsed customers": ("Bought before, but nothing since", lapsed),
        "Regulars": ("Five orders or more", {"purchase_count": {"op": "ge", "value": 5}}),
        "Big spenders": ("", {"total_spend": {"op": "ge", "value": big_spend}}),
        "Europe, not UK": (
            "",
            {
                "all": [
                    {"field": "timezone", "op": "contains", "value": "Europe/"},
                    {"field": "country", "op": "ne", "value": "United Kingdom"},
                ]
            },
        ),
    }
    assert set(wanted) == set(DEMO_SEGMENT_NAMES)
    existing = set(session.scalars(sa.select(Segment.name).where(Segment.name.in_(list(wanted)))))
    for name, (description, rules) in wanted.items():
        if name not in existing:
            session.add(Segment(name=name, description=description, rules=rules))
    return list(wanted)


def _demo_template(session: Session) -> str:
    if session.scalar(sa.select(Template.id).where(Template.name == TEMPLATE_NAME)) is None:
        session.add(Template(name=TEMPLATE_NAME, **TEMPLATE))
    return TEMPLATE_NAME
