"""Per-arm aggregates on the real database: first-time outcomes, revenue variance, races, sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events import metrics
from models import ArmMetric, Event, Rollout, Send
from tests.factories import add_campaign, add_contacts, add_template

T0 = datetime(2024, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture()
def ledger(session: Session) -> dict[str, Any]:
    """A rollout at stage 2 with 6 sends: 3 treatment (one forced), 2 control, 1 holdout."""
    rollout = Rollout(name="r", salt="s", state="ramping", stage_index=2, stages=[])
    session.add(rollout)
    session.flush()
    template = add_template(session)
    campaign = add_campaign(session, template.id)
    contacts = add_contacts(session, 6)
    arms = ["treatment", "treatment", "treatment", "control", "control", "holdout"]
    sends = [
        Send(
            campaign_id=campaign.id,
            contact_id=c,
            rollout_id=rollout.id,
            stage_index=2,
            arm=arm,
            forced=(i == 2),
            state="sent",
            render_ms=[4.0, 12.0, 40.0, 1.0, 2.5, 2.0][i],
            sent_at=T0,
        )
        for i, (c, arm) in enumerate(zip(contacts, arms, strict=True))
    ]
    session.add_all(sends)
    session.commit()
    return {"rollout": rollout, "campaign": campaign, "sends": sends}


def _event(
    send: Send, kind: str, key: str, value: float = 0.0, machine: bool = False, minutes: int = 5
) -> Event:
    return Event(
        dedupe_key=key,
        kind=kind,
        send_id=send.id,
        campaign_id=send.campaign_id,
        rollout_id=send.rollout_id,
        arm=send.arm,
        stage_index=send.stage_index,
        value=value,
        machine=machine,
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def _store(session: Session, events: list[Event]) -> None:
    session.add_all(events)
    session.flush()
    metrics.record_events(session, events)
    session.commit()


def _metric(session: Session, arm: str, metric: str) -> tuple[float, float, float]:
    row = session.execute(
        sa.select(ArmMetric.count, ArmMetric.total, ArmMetric.total_sq).where(
            ArmMetric.arm == arm, ArmMetric.metric == metric, ArmMetric.segment == ""
        )
    ).first()
    return (0.0, 0.0, 0.0) if row is None else (row[0], row[1], row[2])


def test_record_sends_counts_sent_and_render_histogram(session: Session, ledger: dict[str, Any]) -> None:
    metrics.record_sends(session, ledger["sends"])
    session.commit()
    assert _metric(session, "treatment", "sent") == (2, 2, 2)
    assert _metric(session, "forced", "sent") == (1, 1, 1)  # allow-list/beta: never compared
    assert _metric(session, "control", "sent") == (2, 2, 2)
    assert _metric(session, "treatment", "render_ms") == (2, 16.0, 16.0 + 144.0)
    assert _metric(session, "control", "render_ms_le_3")[0] == 1  # 2.5 ms
    assert _metric(session, "control", "render_ms_le_1")[0] == 1  # 1.0 ms sits on its edge
    assert _metric(session, "treatment", "render_ms_le_15")[0] == 1  # 12 ms
    row = session.scalar(sa.select(ArmMetric).where(ArmMetric.metric == "sent", ArmMetric.arm == "control"))
    assert row is not None and row.rollout_id == ledger["rollout"].id and row.stage_index == 2


def test_first_time_outcomes_human_only_and_machine_separately(
    session: Session, ledger: dict[str, Any]
) -> None:
    t1, t2, _forced, c1, _c2, _h = ledger["sends"]
    _store(
        session,
        [
            _event(t1, "open", "o1", machine=True, minutes=0),  # Apple MPP prefetch
            _event(t1, "open", "o2", minutes=7),
            _event(t1, "open", "o3", minutes=3),  # earlier human open in the same batch
            _event(t1, "click", "k1", machine=True),
            _event(c1, "click", "k2"),
            _event(c1, "delivered", "d1"),
        ],
    )
    _store(session, [_event(t1, "open", "o4", minutes=60), _event(t2, "open", "o5")])
    assert _metric(session, "treatment", "open") == (2, 2, 2)  # t1 once, t2 once
    assert _metric(session, "treatment", "open_machine") == (1, 1, 1)
    assert _metric(session, "treatment", "click_bot") == (1, 1, 1)
    assert _metric(session, "treatment", "click") == (0, 0, 0)
    assert _metric(session, "control", "click") == (1, 1, 1)
    assert _metric(session, "control", "delivered") == (1, 1, 1)
    session.expire_all()
    assert session.get(Send, t1.id).opened_at == T0 + timedelta(minutes=3)  # type: ignore[union-attr]
    assert session.get(Send, t1.id).clicked_at is None  # type: ignore[union-attr]  # bot click


def test_revenue_sum_of_squares_per_recipient(session: Session, ledger: dict[str, Any]) -> None:
    t1, t2, *_ = ledger["sends"]
    # t1 buys 10 then 5 (two batches), t2 buys 3: per-recipient revenue 15 and 3
    _store(session, [_event(t1, "conversion", "c1", value=10.0), _event(t2, "conversion", "c2", value=3.0)])
    _store(session, [_event(t1, "conversion", "c3", value=5.0)])
    assert _metric(session, "treatment", "conversion") == (2, 2, 2)
    count, total, total_sq = _metric(session, "treatment", "revenue")
    assert (count, total) == (3, 18.0)
    assert total_sq == pytest.approx(15.0**2 + 3.0**2)  # 234, not 10^2 + 5^2 + 3^2 = 134
    session.expire_all()
    assert session.get(Send, t1.id).revenue == 15.0  # type: ignore[union-attr]


def test_replayed_outcomes_count_once_across_workers(
    session: Session, ledger: dict[str, Any], app: Any
) -> None:
    """Two sessions (two ingest workers) record the same recipient's unsubscribe: counted once."""
    t1 = ledger["sends"][0]
    other = app.extensions["mailramp"].session_factory()
    try:
        _store(session, [_event(t1, "unsubscribe", "u1")])
        e2 = _event(t1, "unsubscribe", "u2")
        other.add(e2)
        other.flush()
        metrics.record_events(other, [e2])
        other.commit()
    finally:
        other.close()
    assert _metric(session, "treatment", "unsubscribe") == (1, 1, 1)


def test_segments_are_counted_next_to_the_whole_arm(session: Session, ledger: dict[str, Any]) -> None:
    t1, t2, *_ = ledger["sends"]
    segments = {t1.id: ["country=UK"], t2.id: ["country=FR"]}
    events = [_event(t1, "complaint", "x1"), _event(t2, "complaint", "x2")]
    session.add_all(events)
    session.flush()
    metrics.record_events(session, events, segments=segments)
    session.commit()
    rows = dict(
        session.execute(
            sa.select(ArmMetric.segment, ArmMetric.count).where(ArmMetric.metric == "complaint")
        ).all()
    )
    assert rows == {"": 2, "country=UK": 1, "country=FR": 1}


def test_rebuild_gives_the_incremental_numbers(session: Session, ledger: dict[str, Any]) -> None:
    from campaigns.events.metrics_rebuild import rebuild_aggregates

    t1, t2, forced, c1, c2, h = ledger["sends"]
    c2.state = "failed"
    session.commit()
    metrics.record_sends(session, ledger["sends"])
    _store(
        session,
        [
            _event(t1, "open", "a", machine=True),
            _event(t1, "open", "b"),
            _event(t1, "open", "c"),
            _event(forced, "click", "d"),
            _event(c1, "click", "e", machine=True),
            _event(h, "delivered", "f"),
            _event(t2, "conversion", "g", value=7.0),
            _event(c1, "unsubscribe", "i"),
            _event(h, "bounce", "j"),
        ],
    )
    _store(
        session,
        [
            _event(t2, "conversion", "k", value=3.0),
            _event(c1, "conversion", "l"),
            _event(t1, "complaint", "m"),
        ],
    )

    def snapshot() -> dict[tuple[int, str, str], tuple[float, float, float]]:
        rows = session.execute(
            sa.select(ArmMetric.stage_index, ArmMetric.arm, ArmMetric.metric, ArmMetric.count, ArmMetric.total,
                      ArmMetric.total_sq).where(ArmMetric.segment == "")
        )  # fmt: skip
        return {(r[0], r[1], r[2]): (r[3], r[4], pytest.approx(r[5])) for r in rows}  # type: ignore[misc]

    incremental = snapshot()
    assert rebuild_aggregates(session, ledger["rollout"].id) == len(incremental)
    session.commit()
    assert snapshot() == incremental
    assert incremental[(2, "treatment", "revenue")] == (2, 10.0, pytest.approx(100.0))
    assert incremental[(2, "control", "failed")] == (1, 1, 1)


def test_two_ingest_workers_at_once(session: Session, ledger: dict[str, Any], app: Any) -> None:
    """Two threads, two sessions, the same recipients (different raw events): every recipient is
    counted once per outcome and the revenue sums stay exact."""
    import threading

    sends = ledger["sends"][:2]  # two treatment recipients
    factory = app.extensions["mailramp"].session_factory
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        own = factory()
        try:
            for round_ in range(10):
                batch = [_event(s, kind, f"{name}:{round_}:{s.id}:{kind}", value=2.0 if kind == "conversion" else 0.0)
                         for s in sends for kind in ("open", "click", "conversion")]  # fmt: skip
                own.add_all(batch)
                own.flush()
                metrics.record_events(own, batch)
                own.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _metric(session, "treatment", "open") == (2, 2, 2)
    assert _metric(session, "treatment", "click") == (2, 2, 2)
    assert _metric(session, "treatment", "conversion") == (2, 2, 2)
    count, total, total_sq = _metric(session, "treatment", "revenue")
    assert (count, total) == (40, 80.0)  # 2 workers x 10 rounds x 2 recipients, 2.0 each
    assert total_sq == pytest.approx(2 * 40.0**2)  # each recipient ends with 40.0
