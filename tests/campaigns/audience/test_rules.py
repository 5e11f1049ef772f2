"""Segment rules compiled to SQL, checked against a small hand-made population.

Runs on whichever database the suite points at (SQLite by default, PostgreSQL with
TEST_DATABASE_URL): the expected member sets are the same on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience import rules as audience
from campaigns.errors import InputError, NotFound
from models import Contact, Interaction, Item, Segment, Suppression
from models.db import make_engine, make_session_factory
from tests.conftest import empty_database

NOW = datetime(2011, 12, 10, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture()
def db(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    empty_database(engine)
    session = make_session_factory(engine)()
    yield session
    session.close()
    empty_database(engine)
    engine.dispose()


@pytest.fixture()
def population(db: Session) -> Session:
    """Five contacts; 1-3 bought things. Only 1 and 2 are sendable (3 no consent, 4 unsubscribed,
    5 suppressed)."""
    attrs: list[dict[str, Any]] = [
        {"beta": True, "age": 34, "plan": "gold", "tags": ["vip", "new"]},
        {"beta": False, "age": "34", "plan": "silver"},
        {},
        {"age": 51.5, "tags": "vip"},
        {"plan": None},
    ]
    rows = [
        ("a@x.com", "GB", True, "active", "2011-01-01"),
        ("b@x.com", "FR", True, "active", "2011-06-01"),
        ("c@x.com", "GB", False, "active", "2011-06-01"),
        ("d@x.com", "DE", True, "unsubscribed", "2011-06-01"),
        ("e@x.com", "US", True, "active", "2011-06-01"),
    ]
    for i, ((email, country, consent, status, created), attributes) in enumerate(
        zip(rows, attrs, strict=True)
    ):
        db.add(
            Contact(
                id=i + 1,
                email=email,
                name=f"Person {i + 1}",
                country=country,
                consent=consent,
                status=status,
                attributes=attributes,
                created_at=at(created),
            )
        )
    db.add_all(
        [
            Item(id=1, sku="A", name="Candle", category="candles", price=2.0),
            Item(id=2, sku="B", name="Mug", category="mugs", price=5.0),
            Suppression(email="e@x.com", reason="manual"),
        ]
    )
    db.flush()
    purchases = [
        (1, 1, "purchase", 10.0, "2011-12-01", "INV1"),
        (1, 2, "purchase", 5.0, "2011-12-01", "INV1"),
        (2, 2, "purchase", 20.0, "2011-06-01", "INV2"),
        (2, 2, "return", 20.0, "2011-06-05", "C1"),
        (3, 1, "purchase", 3.0, "2011-11-20", "INV3"),
        (3, 1, "purchase", 4.0, "2011-11-25", None),
    ]
    for contact_id, item_id, kind, value, when, ref in purchases:
        db.add(
            Interaction(
                contact_id=contact_id,
                item_id=item_id,
                kind=kind,
                value=value,
                occurred_at=at(when),
                reference=ref,
            )
        )
    db.commit()
    return db


def matching(session: Session, rules: Any) -> set[int]:
    query = sa.select(Contact.id).where(audience.segment_filter(rules, NOW))
    return set(session.scalars(query))


CASES: list[tuple[str, Any, set[int]]] = [
    ("bool attribute true", {"field": "attributes.beta", "op": "eq", "value": True}, {1}),
    ("bool attribute false", {"field": "attributes.beta", "value": False}, {2}),
    ("ne includes missing", {"field": "attributes.beta", "op": "ne", "value": True}, {2, 3, 4, 5}),
    ("number ge skips text", {"field": "attributes.age", "op": "ge", "value": 30}, {1, 4}),
    ("float compare", {"field": "attributes.age", "op": "gt", "value": 50}, {4}),
    ("text eq skips numbers", {"field": "attributes.age", "op": "eq", "value": "34"}, {2}),
    ("mixed in", {"field": "attributes.age", "op": "in", "value": [34, "34"]}, {1, 2}),
    ("in", {"field": "attributes.plan", "op": "in", "value": ["gold", "silver"]}, {1, 2}),
    ("not_in", {"field": "attributes.plan", "op": "not_in", "value": ["gold", "silver"]}, {3, 4, 5}),
    ("text order", {"field": "attributes.plan", "op": "lt", "value": "h"}, {1}),
    ("exists ignores null", {"field": "attributes.plan", "op": "exists"}, {1, 2}),
    ("exists false", {"field": "attributes.plan", "op": "exists", "value": False}, {3, 4, 5}),
    ("contains array or text", {"field": "attributes.tags", "op": "contains", "value": "vip"}, {1, 4}),
    ("array element exact", {"field": "attributes.tags", "op": "contains", "value": "ne"}, set()),
    ("column in", {"field": "country", "op": "in", "value": ["GB"]}, {1, 3}),
    ("column contains, any case", {"field": "country", "op": "contains", "value": "g"}, {1, 3}),
    ("column like escaped", {"field": "name", "op": "contains", "value": "%"}, set()),
    ("email normalized", {"field": "email", "op": "eq", "value": " A@X.com"}, {1}),
    ("consent", {"field": "consent", "op": "eq", "value": False}, {3}),
    ("status", {"field": "status", "op": "eq", "value": "unsubscribed"}, {4}),
    ("created_at date", {"field": "created_at", "op": "ge", "value": "2011-03-01"}, {2, 3, 4, 5}),
    ("created_at days_ago", {"field": "created_at", "op": "lt", "value": {"days_ago": 300}}, {1}),
    ("bought category recently", {"purchased": {"category": "candles", "within_days": 30}}, {1, 3}),
    ("bought sku", {"purchased": {"sku": "B"}}, {1, 2}),
    ("bought category list", {"purchased": {"category": ["mugs"], "within_days": 30}}, {1}),
    ("bought between", {"purchased": {"since": "2011-11-01", "before": "2011-11-30"}}, {3}),
    ("no purchase in 30 days", {"no_purchase_since": {"days": 30}}, {2, 4, 5}),
    ("lapsed customers", {"no_purchase_since": {"days": 30}, "bought_before": True}, {2}),
    ("no purchase since date", {"no_purchase_since": {"date": "2011-11-22"}}, {2, 4, 5}),
    ("order count", {"purchase_count": {"op": "ge", "value": 2}}, {3}),
    ("zero orders", {"purchase_count": {"op": "lt", "value": 1}}, {4, 5}),
    ("at most one order", {"purchase_count": {"op": "le", "value": 1}}, {1, 2, 4, 5}),
    ("spend net of returns", {"total_spend": {"op": "ge", "value": 15}}, {1}),
    ("low spend", {"total_spend": {"op": "lt", "value": 5}}, {2, 4, 5}),
    ("spend in category", {"total_spend": {"op": "ge", "value": 7, "category": "candles"}}, {1, 3}),
    (
        "all with not",
        {"all": [{"field": "country", "value": "GB"}, {"not": {"field": "consent", "value": False}}]},
        {1},
    ),
    (
        "any of behaviour",
        {"any": [{"purchased": {"sku": "B"}}, {"field": "country", "value": "DE"}]},
        {1, 2, 4},
    ),
    ("empty any", {"any": []}, set()),
    ("empty all", {"all": []}, {1, 2, 3, 4, 5}),
    ("never bought", {"not": {"purchased": {}}}, {4, 5}),
]


@pytest.mark.parametrize(("rules", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_selects_expected_contacts(population: Session, rules: Any, expected: set[int]) -> None:
    audience.validate_rules(rules)
    assert matching(population, rules) == expected
    assert audience.count(population, rules, now=NOW) == len(expected)


def test_audience_leaves_out_unsendable_contacts(population: Session) -> None:
    ids = list(population.scalars(audience.audience_select(population, None, NOW)))
    assert ids == [1, 2]
    segment = Segment(name="GB or FR", rules={"field": "country", "op": "in", "value": ["GB", "FR", "US"]})
    population.add(segment)
    population.commit()
    assert list(population.scalars(audience.audience_select(population, segment.id, NOW))) == [1, 2]
    population.execute(sa.update(Contact).where(Contact.id == 2).values(status="unsubscribed"))
    assert list(population.scalars(audience.audience_select(population, segment.id, NOW))) == [1]
    assert audience.count(population, segment.rules, sendable_only=True, now=NOW) == 1


def test_members_of_a_batch(population: Session) -> None:
    segment = Segment(name="candles", rules={"purchased": {"category": "candles"}})
    population.add(segment)
    population.commit()
    assert audience.members(population, segment.id, [1, 2, 3, 4, 99], NOW) == {1, 3}
    assert audience.members(population, None, [2, 99], NOW) == {2}
    assert audience.members(population, segment.id, [], NOW) == set()
    with pytest.raises(NotFound):
        audience.members(population, 12345, [1], NOW)


BAD: list[tuple[Any, str, str]] = [
    ([], "rules", "JSON object"),
    ({"field": "shoe_size", "value": 1}, "rules.field", "unknown field 'shoe_size'"),
    (
        {"all": [{"field": "country", "value": "GB"}, {"field": "country", "op": "like"}]},
        "rules.all[1].op",
        "unknown op",
    ),
    ({"field": "country", "op": "in", "value": "GB"}, "rules.value", "non-empty list"),
    ({"field": "country", "op": "eq"}, "rules.value", "needs a value"),
    ({"field": "country", "value": 3}, "rules.value", "compares with text"),
    ({"field": "status", "value": "gone"}, "rules.value", "unknown status"),
    ({"field": "consent", "value": "yes"}, "rules.value", "true or false"),
    ({"field": "created_at", "op": "gt", "value": "last week"}, "rules.value", "ISO date"),
    ({"field": "attributes.plan", "value": {"a": 1}}, "rules.value", "not {'a': 1}"),
    ({"field": "attributes.beta", "op": "lt", "value": True}, "rules.value", "true/false"),
    ({"field": 'attributes.a"b', "value": 1}, "rules.field", "quotes"),
    ({"any": {"field": "country"}}, "rules.any", "list of rules"),
    ({"not": {"purchased": {"colour": "red"}}}, "rules.not.purchased", "unexpected keys ['colour']"),
    ({"purchased": {"within_days": -1}}, "rules.purchased.within_days", ">= 0"),
    ({"purchased": {"category": []}}, "rules.purchased.category", "non-empty list"),
    ({"no_purchase_since": {"weeks": 2}}, "rules.no_purchase_since", '{"days": N}'),
    ({"purchase_count": {"op": "ge"}}, "rules.purchase_count.value", "needs a value"),
    ({"total_spend": {"op": "between", "value": 3}}, "rules.total_spend.op", "op must be"),
    ({"purchased": {}, "field": "x"}, "rules", "unexpected keys in a field rule"),
    ({"purchased": {}, "any": []}, "rules", "exactly one of"),
]


@pytest.mark.parametrize(("rules", "where", "message"), BAD)
def test_bad_rules_say_what_and_where(rules: Any, where: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        audience.validate_rules(rules)
    assert info.value.where == where
    assert message in info.value.message


def test_statement_cache_keeps_keys_apart(population: Session) -> None:
    """Same SQL shape, different attribute keys and kinds: the cached statement must not mix them."""
    assert matching(population, {"field": "attributes.beta", "op": "exists"}) == {1, 2}
    assert matching(population, {"field": "attributes.tags", "op": "exists"}) == {1, 4}
    assert matching(population, {"field": "attributes.age", "value": 34}) == {1}
    assert matching(population, {"field": "attributes.age", "value": "34"}) == {2}
