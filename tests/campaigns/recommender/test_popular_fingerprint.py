"""The interactions table's fingerprint, read once per send batch by `popular.best_sellers`: the same
three values as one aggregate SELECT, without scanning the table for the two maximums."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.recommender import popular
from models import Base, Contact, Interaction
from tests.campaigns.recommender.conftest import NOW, Shop, add_items, buy

ONE_SELECT = sa.select(
    sa.func.count(Interaction.id), sa.func.max(Interaction.id), sa.func.max(Interaction.occurred_at)
)


def test_the_fingerprint_is_the_tables_count_highest_id_and_latest_time(session: Session, shop: Shop) -> None:
    assert session.execute(popular._FINGERPRINT).one() == session.execute(ONE_SELECT).one()
    count, max_id, latest = session.execute(popular._FINGERPRINT).one()
    assert count == 14 and latest == NOW - timedelta(days=10)

    newest = session.scalar(sa.select(Interaction).order_by(Interaction.id.desc()).limit(1))
    assert newest is not None and max_id == newest.id
    session.delete(newest)  # a deletion changes the count and the highest id
    session.flush()
    assert session.execute(popular._FINGERPRINT).one() == (13, max_id - 1, latest)


def test_an_empty_table_has_an_empty_fingerprint(session: Session) -> None:
    assert session.execute(popular._FINGERPRINT).one() == (0, None, None)


@pytest.fixture()
def sqlite_session() -> Iterator[Session]:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def test_best_sellers_reads_the_maximums_from_indexes_not_a_scan(sqlite_session: Session) -> None:
    """SQLite answers max() from an index only when it is the SELECT's one aggregate: with the count
    beside it, the fingerprint scanned every interaction once per batch."""
    session = sqlite_session
    items = add_items(session, ["A", "B"])
    contact = Contact(email="a@example.com", country="France")
    session.add(contact)
    session.flush()
    buy(session, contact, items["A"])
    session.commit()
    statements: list[str] = []
    engine = session.get_bind()
    listen = lambda conn, cursor, sql, *rest: statements.append(sql)  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        popular.best_sellers(session, ["France"])
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    fingerprint = next(s for s in statements if "max(interactions.id)" in s)
    plan = [row[3] for row in session.execute(sa.text(f"EXPLAIN QUERY PLAN {fingerprint}"))]
    maximums = [step for step in plan if step.startswith(("SCAN interactions", "SEARCH interactions"))]
    assert any(
        step.startswith("SEARCH interactions USING COVERING INDEX ix_interactions_occurred_at")
        for step in plan
    )
    assert sum(step.startswith("SEARCH interactions") for step in maximums) == 2, plan
