"""The demo workspace: from a small file in the Online Retail shape, and from the generator."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.audience import rules as audience
from campaigns.content.render import validate_template
from campaigns.demo.workspace import TEMPLATE, build_demo
from models import Contact, Interaction, Item, Segment, Template
from tests.campaigns.data_fixtures import factory

__all__ = ["factory"]

RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28,1.85,,United Kingdom\n"
    "536367,POST,POSTAGE,1,2010-12-01 08:34,18.00,17850,United Kingdom\n"
    "536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2011-10-01 10:00,2.95,12583,France\n"
    "536369,22086,PAPER CHAIN KIT 50'S CHRISTMAS,12,2011-10-02 10:00,2.55,12583,France\n"
    "C536370,22086,PAPER CHAIN KIT 50'S CHRISTMAS,-2,2011-10-03 10:00,2.55,12583,France\n"
    "536371,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2011-10-04 10:00,2.55,12583,France\n"
)


def test_demo_from_online_retail_shape(factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "online_retail.csv.gz"
    path.write_bytes(gzip.compress(RETAIL.encode()))
    with factory() as session:
        summary = build_demo(session, str(path))
        session.commit()
        assert (summary.source, summary.contacts, summary.items, summary.interactions) == (
            "online_retail",
            2,
            3,
            6,
        )
        people = {c.external_id: c for c in session.scalars(sa.select(Contact))}
        assert people["17850"].email == "customer-17850@demo.mailramp.test"
        assert (people["12583"].country, people["12583"].timezone) == ("France", "Europe/Paris")
        assert people["12583"].created_at == datetime(2011, 10, 1, 10, 0, tzinfo=UTC)
        assert set(people["17850"].attributes) == {"beta", "tier"}
        items = {i.sku: i for i in session.scalars(sa.select(Item))}
        heart = items["85123A"]
        assert (heart.name, heart.price, heart.category) == (
            "White Hanging Heart T-Light Holder",
            2.55,
            "candles & lights",
        )
        assert heart.url == "https://shop.example/items/85123A"
        assert items["22086"].category == "christmas"
        kinds = session.execute(
            sa.select(Interaction.kind, sa.func.count(), sa.func.sum(Interaction.value)).group_by(
                Interaction.kind
            )
        ).all()
        assert {k: (n, round(v, 2)) for k, n, v in kinds} == {
            "purchase": (5, round(15.3 + 20.34 + 5.9 + 30.6 + 2.55, 2)),
            "return": (1, 5.1),
        }
        segments = {s.name: s.rules for s in session.scalars(sa.select(Segment))}
        now = datetime(2011, 12, 10, tzinfo=UTC)
        assert audience.count(session, segments["Christmas shoppers"], now=now) == 1
        assert (
            audience.count(session, segments["Lapsed customers"], now=now) == 1
        )  # 17850: nothing since Sept
        assert session.scalar(sa.select(Template.name)) == summary.template
        again = build_demo(session, str(path), force=True)
        assert again.source == "existing"


def test_synthetic_demo_is_seeded_and_shaped_like_the_real_one(factory: sessionmaker[Session]) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    counts = []
    for _ in range(2):
        with factory() as session:
            session.execute(sa.delete(Interaction))
            session.execute(sa.delete(Item))
            session.execute(sa.delete(Contact))
            summary = build_demo(
                session, "/nonexistent/online_retail.csv.gz", now=now, synthetic_contacts=200
            )
            session.commit()
            counts.append((summary.contacts, summary.items, summary.interactions))
            assert summary.source == "synthetic"
            emails = session.scalars(sa.select(Contact.email).order_by(Contact.id).limit(2)).all()
            assert emails == ["customer-20000@demo.mailramp.test", "customer-20001@demo.mailramp.test"]
            latest = session.scalar(sa.select(sa.func.max(Interaction.occurred_at)))
            assert latest is not None and latest <= now
            kinds = set(session.scalars(sa.select(Interaction.kind).distinct()))
            assert kinds == {"purchase", "return"}
            assert (session.scalar(sa.select(sa.func.count(sa.distinct(Item.category)))) or 0) > 5
            assert build_demo(session, None).source == "existing"
    assert counts[0] == counts[1]
    assert counts[0][:2] == (200, 50)


def test_demo_template_passes_template_validation() -> None:
    validate_template(
        TEMPLATE["subject"], TEMPLATE["layout_html"], TEMPLATE["control_html"], TEMPLATE["ai_html"]
    )
