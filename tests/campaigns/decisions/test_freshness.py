"""Stale data on a weekly list, and the evaluator on the simulated clock.

A weekly newsletter's events stop a few days after each send, so the next send follows days of quiet;
the look right after it (the wave's own evaluation) must not pause the rollout as "tracking is down"
before the new recipients have had any time to open. Quiet counts from the first send after the last
event. And `evaluate` and the state machine take `models.utcnow`, as every writer of the engine does,
so a replay under `simulated_now` (the demo, the small-list test) decides at the simulated moment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions import decide
from campaigns.decisions.evaluation import evaluate
from campaigns.events import metrics
from models import Rollout, Send, simulated_now
from tests.campaigns.decisions.test_decide import NOW, healthy, snapshot
from tests.campaigns.decisions.test_evaluation import build
from tests.factories import add_contacts


def test_a_send_after_days_of_quiet_is_not_stale_until_it_had_its_hours() -> None:
    quiet_week: dict[str, Any] = {
        "last_event_at": NOW - timedelta(hours=72),
        "last_send_at": NOW - timedelta(minutes=5),
    }
    just_sent = decide(snapshot(healthy(), resumed_send_at=NOW - timedelta(minutes=10), **quiet_week))
    assert just_sent.outcome != "pause" and "stale" not in just_sent.health
    silent = decide(snapshot(healthy(), resumed_send_at=NOW - timedelta(hours=25), **quiet_week))
    assert silent.outcome == "pause" and silent.health == ("stale",)
    # unknown when sending resumed: counted from the last event, as before
    assert decide(snapshot(healthy(), **quiet_week)).health == ("stale",)


def _weekly(session: Session) -> Rollout:
    """Sends and events recorded four days before NOW; then, at NOW, the next week's send."""
    with simulated_now(NOW - timedelta(hours=96)):
        rollout = build(session)
    campaign_id = session.scalar(sa.select(Send.campaign_id).limit(1))
    with simulated_now(NOW):
        sends = [
            Send(campaign_id=campaign_id, contact_id=c, rollout_id=rollout.id, stage_index=0, state="sent",
                 arm="control", sent_at=NOW)
            for c in add_contacts(session, 10, start=5000)
        ]  # fmt: skip
        session.add_all(sends)
        session.flush()
        metrics.record_sends(session, sends)
        session.commit()
    return rollout


def test_the_look_right_after_a_weekly_send_does_not_pause(session: Session) -> None:
    rollout = _weekly(session)
    decision = evaluate(session, rollout.id, now=NOW + timedelta(minutes=10))
    session.commit()
    assert decision.outcome != "pause" and "stale" not in decision.evidence["health"], decision.reasons
    # a day later still no event from the new send: stale
    later = evaluate(session, rollout.id, now=NOW + timedelta(hours=25))
    assert later.outcome == "pause" and later.evidence["health"] == ["stale"]
    assert "no tracking event arrived for 25.0 h" in later.reasons[0]


def test_evaluate_and_the_machine_take_the_simulated_clock(session: Session) -> None:
    rollout = build(session, sent_hours_ago=96)  # matured at NOW: the evaluator advances
    moment = NOW + timedelta(minutes=3)
    with simulated_now(moment):
        decision = evaluate(session, rollout.id)
        session.commit()
    assert decision.outcome == "advance" and decision.at == moment
    session.refresh(rollout)
    assert rollout.stage_index == 1 and rollout.stage_started_at == moment
