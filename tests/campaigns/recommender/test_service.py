"""lookup / ensure_scored / score_contact against the real database fixture."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.blobstore import BlobStore
from campaigns.recommender import service, training
from campaigns.recommender.rules import CampaignRules
from models import Contact, Item, Recommendation
from tests.campaigns.recommender.conftest import NOW, Shop, add_items


def test_without_any_interactions_the_newest_enabled_items_are_recommended(session: Session) -> None:
    items = add_items(session, ["old", "mid", "new"])
    items["new"].enabled = False
    contact = Contact(email="a@example.com", country="France")
    session.add(contact)
    session.commit()

    found = service.lookup(session, None, [contact.id], limit=6)

    assert [r.name for r in found[contact.id]] == ["mid", "old"]
    assert {r.reason for r in found[contact.id]} == {"new in the catalog"}


def test_without_a_model_contacts_get_their_countrys_best_sellers(session: Session, shop: Shop) -> None:
    ids = [shop.contacts[n].id for n in ("cold_fr", "nowhere", "uk1")]

    found = service.lookup(session, None, ids, limit=2)

    assert [r.name for r in found[shop.contacts["cold_fr"].id]] == ["E", "F"]
    assert found[shop.contacts["cold_fr"].id][0].reason == "popular in France"
    # no country: the overall best-sellers (A and B: 3 buyers each, ties by item id)
    assert [r.name for r in found[shop.contacts["nowhere"].id]] == ["A", "B"]
    assert found[shop.contacts["nowhere"].id][0].reason == "popular right now"
    first = found[shop.contacts["uk1"].id][0]
    assert (first.sku, first.url, first.category, first.price) == (
        "SKU-A",
        "https://shop.test/A",
        "kitchen",
        1.0,
    )


def test_short_country_lists_are_topped_up_with_overall_best_sellers(session: Session, shop: Shop) -> None:
    found = service.lookup(session, None, [shop.contacts["fr1"].id], limit=4)

    names = [r.name for r in found[shop.contacts["fr1"].id]]
    assert names == ["E", "F", "A", "B"]
    assert found[shop.contacts["fr1"].id][2].reason == "popular right now"


def test_lookup_issues_a_few_queries_per_batch_not_one_per_contact(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    ids = [c.id for c in shop.contacts.values()]
    service.ensure_scored(session, None, ids, now=NOW)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        found = service.lookup(session, None, ids * 100, limit=6)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(found) == len(ids)
    assert len(statements) <= 8


def test_a_trained_blend_serves_stored_recommendations_with_reasons(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    version = training.train(
        session, blob_store, kind="blend", end=NOW, evaluate=False, trained_by="t@example.com"
    )
    assert (version.role, version.status) == ("champion", "ready")
    uk3 = shop.contacts["uk3"].id

    written = service.ensure_scored(session, None, [uk3, shop.contacts["cold_fr"].id], now=NOW)
    session.commit()

    assert written == 1  # the cold contact gets no row: the lookup falls back for it
    assert service.ensure_scored(session, None, [uk3], now=NOW) == 0  # fresh rows are kept
    recs = service.lookup(session, None, [uk3], limit=4)[uk3]
    by_name = {r.name: r for r in recs}
    assert by_name["A"].reason == "you bought this before"
    # uk3 has A, B, C; D is what the other C buyers also bought
    assert by_name["D"].reason.startswith("because you bought ")
    assert [r.name for r in recs][:3] != []
    assert session.scalar(sa.select(sa.func.count()).select_from(Recommendation)) == 1


def test_disabled_items_are_dropped_and_rules_filter(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    training.train(session, blob_store, kind="blend", end=NOW, evaluate=False)
    uk1 = shop.contacts["uk1"].id
    service.ensure_scored(session, None, [uk1], now=NOW)
    shop.items["A"].enabled = False
    session.commit()

    names = [r.name for r in service.lookup(session, None, [uk1], limit=6)[uk1]]
    assert "A" not in names

    garden = CampaignRules(categories=frozenset({"garden"}))
    picked = service.lookup(session, None, [uk1], limit=6, rules=garden)[uk1]
    assert picked and {r.category for r in picked} == {"garden"}
    one_each = CampaignRules(max_per_category=1)
    assert len(service.lookup(session, None, [uk1], limit=6, rules=one_each)[uk1]) == 2


def test_score_contact_stores_nothing(session: Session, shop: Shop, blob_store: BlobStore) -> None:
    version = training.train(session, blob_store, kind="blend", end=NOW, evaluate=False)
    recs = service.score_contact(session, version.id, shop.contacts["uk3"].id, limit=3, now=NOW)
    assert len(recs) == 3
    assert session.scalar(sa.select(sa.func.count()).select_from(Recommendation)) == 0
    cold = service.score_contact(session, version.id, shop.contacts["cold_fr"].id, limit=2, now=NOW)
    assert [r.name for r in cold] == ["E", "F"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Item)) == 6
