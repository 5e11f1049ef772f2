"""Catalog items and purchase history: categories, item import, Online Retail interaction import."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.audience import rules as audience
from campaigns.catalog import items as catalog
from campaigns.catalog.interactions import parse_time
from campaigns.errors import InputError, StateError
from models import Interaction, Item
from tests.campaigns.data_fixtures import errors_by_row, factory, run_csv

__all__ = ["factory"]


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "candles & lights"),
        ("CHRISTMAS CRAFT TREE TOP ANGEL", "christmas"),  # christmas before crafts
        ("JUMBO BAG RED RETROSPOT", "bags"),
        ("PARTY BUNTING", "party"),
        ("ROSES REGENCY TEACUP AND SAUCER", "kitchen"),
        ("HOT WATER BOTTLE KEEP CALM", "kitchen"),
        ("SPACEBOY LUNCH BOX", "kitchen"),
        ("DIAMANTE NECKLACE", "jewellery & accessories"),
        ("TRAVEL SEWING KIT", "crafts & sewing"),
        ("SOMETHING ENTIRELY UNKNOWN", "other"),
    ],
)
def test_categorize(description: str, category: str) -> None:
    assert catalog.categorize(description) == category


def test_item_import_upserts_on_sku_and_reports_bad_rows(factory: sessionmaker[Session]) -> None:
    first = run_csv(
        factory,
        "items",
        "id,name,url,price,image,category\n"
        "A1,WHITE METAL LANTERN,https://shop.example/a1,3.39,,\n"  # 2 good, category derived
        "B2,Mug,https://shop.example/b2,2.5,https://img.example/b2.jpg,kitchen\n"  # 3 good
        "C3,Cheap,ftp://nope,1,,\n"  # 4 bad url
        "D4,Free,,-1,,\n"  # 5 negative price
        "E5,Odd,,abc,,\n"  # 6 price not a number
        ",No sku,,1,,\n"  # 7 no sku
        "A1,Again,,1,,\n",  # 8 duplicate of row 2
    )
    assert (first.rows_imported, first.rows_failed) == (2, 5)
    assert errors_by_row(first) == {4: ["url"], 5: ["price"], 6: ["price"], 7: ["sku"], 8: ["sku"]}
    second = run_csv(factory, "items", "sku,price,enabled\nA1,4.0,no\nZ9,1.0,yes\n")
    assert (second.rows_imported, second.rows_failed) == (2, 0)
    with factory() as session:
        items = {i.sku: i for i in session.scalars(sa.select(Item))}
    assert (items["A1"].name, items["A1"].price, items["A1"].enabled) == ("White Metal Lantern", 4.0, False)
    assert items["A1"].category == "candles & lights"
    assert (items["B2"].category, items["B2"].image_url) == ("kitchen", "https://img.example/b2.jpg")
    assert (items["Z9"].name, items["Z9"].category) == ("", "other")


def test_item_crud(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        item = catalog.create_item(
            session, {"sku": "K1", "name": "Knitted Union Flag Hot Water Bottle", "price": 3.39}
        )
        assert item.category == "kitchen"
        with pytest.raises(StateError):
            catalog.create_item(session, {"sku": "K1"})
        with pytest.raises(InputError) as info:
            catalog.update_item(session, item.id, {"price": "lots"})
        assert info.value.where == "price"
        assert catalog.update_item(session, item.id, {"enabled": False}).enabled is False
        assert catalog.search_items(session, query="hot water").total == 1
        assert catalog.categories(session) == [("kitchen", 1)]


RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
RETAIL = (
    RETAIL_HEADER
    + (
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26,2.55,17850,United Kingdom\n"  # 2
        "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26,3.39,17850,United Kingdom\n"  # 3
        "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28,1.85,,United Kingdom\n"  # 4 no customer: skip
        "536367,POST,POSTAGE,1,2010-12-01 08:34,18.00,17850,United Kingdom\n"  # 5 postage: skip
        "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-01 09:41,2.55,17850,United Kingdom\n"  # 6 return
        "536370,22728,ALARM CLOCK BAKELIKE PINK,24,12/1/2010 8:45,3.75,12583,France\n"  # 7 US date format
        "536371,22728,ALARM CLOCK BAKELIKE PINK,24,yesterday,3.75,12583,France\n"  # 8 bad date
        "536372,22728,ALARM CLOCK BAKELIKE PINK,many,2010-12-01 09:00,3.75,12583,France\n"  # 9 bad quantity
        "536373,22728,ALARM CLOCK BAKELIKE PINK,1,2010-12-01 09:00,3.75,99999,France\n"  # 10 unknown customer
        "536374,99999,,1,2010-12-01 09:00,1.00,12583,France\n"  # 11 unknown sku, no description
    )
)


def _contacts(factory: sessionmaker[Session]) -> None:
    run_csv(
        factory, "contacts", "email,customer_id,country\na@example.com,17850,GB\nb@example.com,12583,FR\n"
    )


def test_online_retail_interactions(factory: sessionmaker[Session]) -> None:
    _contacts(factory)
    run = run_csv(factory, "interactions", RETAIL, chunk_rows=4)
    assert (run.rows_total, run.rows_imported, run.rows_skipped, run.rows_failed) == (10, 4, 2, 4)
    assert errors_by_row(run) == {8: ["occurred_at"], 9: ["quantity"], 10: ["customer_id"], 11: ["sku"]}
    with factory() as session:
        rows = session.execute(
            sa.select(Item.sku, Interaction.kind, Interaction.quantity, Interaction.value, Interaction.reference,
                      Interaction.occurred_at).join(Item).order_by(Interaction.id)
        ).all()  # fmt: skip
        items = {i.sku: i for i in session.scalars(sa.select(Item))}
    assert [tuple(r[:5]) for r in rows] == [
        ("85123A", "purchase", 6.0, 15.3, "536365"),
        ("71053", "purchase", 6.0, 20.34, "536365"),
        ("85123A", "return", 2.0, 5.1, "C536379"),
        ("22728", "purchase", 24.0, 90.0, "536370"),
    ]
    assert rows[3][5] == datetime(2010, 12, 1, 8, 45, tzinfo=UTC)
    assert set(items) == {"85123A", "71053", "22728"}  # created from the file; POST never
    assert (items["22728"].name, items["22728"].price, items["22728"].category) == (
        "Alarm Clock Bakelike Pink",
        3.75,
        "home decor",
    )


def test_reimporting_the_same_file_adds_nothing(factory: sessionmaker[Session]) -> None:
    _contacts(factory)
    run_csv(factory, "interactions", RETAIL)
    again = run_csv(factory, "interactions", RETAIL)
    assert (again.rows_imported, again.rows_skipped) == (0, 6)
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 4


def test_plain_interactions_by_email_feed_segments(factory: sessionmaker[Session]) -> None:
    _contacts(factory)
    run_csv(factory, "items", "sku,name,category\nM1,Mug,kitchen\nC1,Candle,candles & lights\n")
    run = run_csv(
        factory,
        "interactions",
        "email,sku,occurred_at,quantity,value,kind\n"
        "A@example.com,M1,2011-11-01T10:00:00Z,1,12.5,\n"
        "a@example.com,C1,2011-11-02,2,7.5,purchase\n"
        "b@example.com,C1,2011-11-03,1,4,view\n"
        "nobody@example.com,C1,2011-11-03,1,4,\n"
        "b@example.com,C1,2011-11-03,1,4,gift\n",
    )
    assert (run.rows_imported, run.rows_failed) == (3, 2)
    assert errors_by_row(run) == {5: ["email"], 6: ["kind"]}
    now = datetime(2011, 11, 10, tzinfo=UTC)
    with factory() as session:
        assert audience.count(session, {"total_spend": {"op": "ge", "value": 20}}, now=now) == 1
        assert (
            audience.count(
                session, {"purchased": {"category": "candles & lights", "within_days": 30}}, now=now
            )
            == 1
        )


def test_missing_columns_for_interactions(factory: sessionmaker[Session]) -> None:
    run = run_csv(factory, "interactions", "sku,quantity\nA,1\n")
    assert run.status == "failed"
    assert run.errors[0]["field"] == "occurred_at"
    assert "customer_id or email" in run.errors[0]["error"]


def test_parse_time() -> None:
    assert parse_time("2011-12-09 12:50") == datetime(2011, 12, 9, 12, 50, tzinfo=UTC)
    assert parse_time("12/9/2011 12:50") == datetime(2011, 12, 9, 12, 50, tzinfo=UTC)
    assert parse_time("2011-12-09T12:50:00+01:00") == datetime(2011, 12, 9, 11, 50, tzinfo=UTC)
    with pytest.raises(InputError):
        parse_time("09.12.2011")
