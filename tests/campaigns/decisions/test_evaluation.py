"""evaluate() on the real database: aggregates in, a stored decision applied through the state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions.evaluation import evaluate, live_rollout_ids
from campaigns.errors import NotFound
from campaigns.events import metrics
from models import Approval, Decision, Event, Rollout, RolloutAudit, Send, Webhook, WebhookDelivery
from tests.factories import add_campaign, add_contacts, add_template

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
PLAN = [
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": {"min_recipients_per_arm": 100}},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 100}},
]
POLICY = {"policy": {"min_samples_per_arm": 100, "tuning_n": 1000}}


def build(session: Session, n_treatment: int = 300, n_control: int = 300, converted: tuple[int, int] = (30, 30),
          unsubscribed: tuple[int, int] = (0, 0), sent_hours_ago: float = 96, **rollout_fields: Any) -> Rollout:  # fmt: skip
    """A ramping rollout at stage 0 (50/50, no holdout) whose sends and events went through metrics;
    sent four days before NOW by default, so matured for every metric."""
    rollout = Rollout(
        name="AI picks", salt="salt", state="ramping", stage_index=0, stages=PLAN, guardrails=POLICY, plan="manual",
        stage_started_at=NOW - timedelta(days=1), **rollout_fields,
    )  # fmt: skip
    session.add(rollout)
    session.flush()
    campaign = add_campaign(session, add_template(session).id)
    contacts = add_contacts(session, n_treatment + n_control)
    sent_at = NOW - timedelta(hours=sent_hours_ago)
    sends = [
        Send(campaign_id=campaign.id, contact_id=c, rollout_id=rollout.id, stage_index=0, state="sent",
             arm="treatment" if i < n_treatment else "control", sent_at=sent_at, render_ms=5.0)
        for i, c in enumerate(contacts)
    ]  # fmt: skip
    session.add_all(sends)
    session.flush()
    metrics.record_sends(session, sends)
    treatment, control = sends[:n_treatment], sends[n_treatment:]
    events = []
    for group, conv, unsub in (
        (treatment, converted[0], unsubscribed[0]),
        (control, converted[1], unsubscribed[1]),
    ):
        events += [_event(s, "conversion", value=20.0) for s in group[:conv]]
        events += [_event(s, "unsubscribe") for s in group[-unsub:]] if unsub else []
    session.add_all(events)
    session.flush()
    metrics.record_events(session, events)
    session.commit()
    return rollout


def _event(send: Send, kind: str, value: float = 0.0) -> Event:
    return Event(dedupe_key=f"{kind}:{send.id}", kind=kind, send_id=send.id, campaign_id=send.campaign_id,
                 rollout_id=send.rollout_id, arm=send.arm, stage_index=0, value=value,
                 occurred_at=NOW - timedelta(hours=1))  # fmt: skip


def test_advance_is_applied_and_audited(session: Session) -> None:
    rollout = build(session)
    decision = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert decision.outcome == "advance" and decision.applied
    assert decision.evidence["primary"]["metric"] == "conversion_rate"
    assert decision.evidence["primary"]["mean_treatment"] == pytest.approx(0.1)
    assert decision.evidence["recipients"] == {"treatment": 300, "comparison": 300, "matured": True}
    session.refresh(rollout)
    assert (rollout.state, rollout.stage_index) == ("ramping", 1)
    audit = session.scalars(sa.select(RolloutAudit).where(RolloutAudit.rollout_id == rollout.id)).one()
    assert audit.actor == "evaluator" and audit.action == "advance"
    assert audit.evidence["decision_id"] == decision.id
    assert decision.evidence["application"] == {"status": "applied", "audit_id": audit.id}


def test_harmful_guardrail_rolls_back(session: Session) -> None:
    rollout = build(session, unsubscribed=(30, 1))  # 10% against 0.3%
    decision = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert decision.outcome == "rollback" and decision.applied
    assert decision.evidence["health"] == ["guardrail:unsubscribe_rate"]
    session.refresh(rollout)
    assert rollout.state == "rolled_back"
    assert rollout.id not in live_rollout_ids(session)


def test_sample_ratio_mismatch_pauses(session: Session) -> None:
    rollout = build(session, n_treatment=300, n_control=150)  # sequential e-value 2,000 > 1 / 0.001
    decision = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert decision.outcome == "pause" and decision.applied
    assert decision.evidence["srm"]["mismatch"] is True
    session.refresh(rollout)
    assert rollout.state == "paused"
    again = evaluate(session, rollout.id, now=NOW)  # paused: nothing more to decide
    assert again.outcome == "hold" and not again.applied


def test_approval_mode_leaves_the_advance_waiting(session: Session) -> None:
    rollout = build(session, decision_mode="approval")
    first = evaluate(session, rollout.id, now=NOW)
    second = evaluate(session, rollout.id, now=NOW + timedelta(minutes=5))
    session.commit()
    assert first.outcome == "advance" and not first.applied
    assert first.evidence["application"]["status"] == "awaiting_approval"
    approvals = session.scalars(sa.select(Approval).where(Approval.rollout_id == rollout.id)).all()
    assert len(approvals) == 1  # the second evaluation found the pending one
    assert (approvals[0].action, approvals[0].target_stage, approvals[0].status) == ("advance", 1, "pending")
    assert (
        approvals[0].decision_id == first.id
        and second.evidence["application"]["approval_id"] == approvals[0].id
    )
    session.refresh(rollout)
    assert rollout.stage_index == 0


def test_decisions_are_stored_and_webhooks_queued_once_per_change(session: Session) -> None:
    session.add(Webhook(url="http://127.0.0.1:9/hook", secret="s3cret", format="json"))
    session.add(Webhook(url="http://127.0.0.1:9/slack", secret="s3cret", format="slack", events=["health"]))
    rollout = build(session, n_treatment=50, n_control=50, converted=(5, 5))  # too few: hold
    evaluate(session, rollout.id, now=NOW)
    evaluate(session, rollout.id, now=NOW + timedelta(minutes=5))  # the same hold again
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 2
    deliveries = session.scalars(sa.select(WebhookDelivery)).all()
    assert [d.event for d in deliveries] == ["decision.hold"]  # json hook only; the repeat is not sent
    assert deliveries[0].payload["decision"]["reasons"][0].startswith("not enough matured data")
    assert deliveries[0].rollout_id == rollout.id and deliveries[0].status == "pending"


def test_stale_tracking_pauses_and_alerts_health(session: Session) -> None:
    session.add(Webhook(url="http://127.0.0.1:9/slack", secret="s3cret", format="slack", events=["health"]))
    rollout = build(session)
    later = NOW + timedelta(hours=30)
    extra = Send(campaign_id=session.scalar(sa.select(Send.campaign_id).limit(1)), contact_id=add_contacts(session, 1, start=5000)[0],
                 rollout_id=rollout.id, stage_index=0, state="sent", arm="control", sent_at=later)  # fmt: skip
    session.add(extra)
    session.flush()
    metrics.record_sends(session, [extra])  # recorded after the last event; then 30 h of silence
    session.commit()
    decision = evaluate(session, rollout.id, now=datetime.now(UTC) + timedelta(hours=30))
    session.commit()
    assert decision.outcome == "pause" and decision.evidence["health"] == ["stale"]
    slack = session.scalars(sa.select(WebhookDelivery)).all()
    assert [d.event for d in slack] == ["health.stale"]
    assert slack[0].payload["text"].startswith(":warning: *health.stale*")


def test_unknown_rollout(session: Session) -> None:
    with pytest.raises(NotFound):
        evaluate(session, 12345)


def test_broken_guardrails_json_holds_with_reason(session: Session) -> None:
    rollout = build(session)
    rollout.guardrails = {"latency": 3}
    session.commit()
    decision = evaluate(session, rollout.id, now=NOW)
    assert decision.outcome == "hold" and decision.reasons[0].startswith(
        "cannot evaluate: guardrails: unknown guardrail"
    )


def test_periodic_job_evaluates_live_rollouts_only(app: Any, session: Session) -> None:
    import importlib

    from campaigns.decisions.evaluation import CRON_JOBS, evaluate_all

    live = build(session)
    session.add(Rollout(name="draft", salt="d", state="draft", stages=PLAN))
    session.commit()
    [decision_id] = evaluate_all()
    stored = session.get(Decision, decision_id)
    assert stored is not None and stored.rollout_id == live.id and stored.applied
    for job in CRON_JOBS:  # every declared periodic job resolves to a function
        module, _, name = job["func"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))


def test_a_harmed_report_segment_is_excluded_through_the_state_machine(session: Session) -> None:
    """France converts at a third of its control rate, the rest as control: the evaluator excludes
    France (audited, a webhook queued) and the rollout stays live for the others."""
    from models import Segment

    france = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
    session.add_all([france, Webhook(url="http://127.0.0.1:9/hook", secret="s3cret", format="json")])
    session.flush()
    rollout = Rollout(
        name="AI picks", salt="salt", state="ramping", stage_index=0, stages=PLAN, guardrails=POLICY,
        plan="manual", report_segments=[france.id], stage_started_at=NOW - timedelta(days=5),
    )  # fmt: skip
    session.add(rollout)
    session.flush()
    campaign = add_campaign(session, add_template(session).id)
    contacts = add_contacts(session, 8000)
    sends = [
        Send(campaign_id=campaign.id, contact_id=c, rollout_id=rollout.id, stage_index=0, state="sent",
             arm="treatment" if i % 2 else "control", sent_at=NOW - timedelta(days=4))
        for i, c in enumerate(contacts)
    ]  # fmt: skip
    session.add_all(sends)
    session.flush()
    in_france = {s.id: ["France"] for i, s in enumerate(sends) if i < 4000}
    metrics.record_sends(session, sends, in_france)
    converted = []
    for i, s in enumerate(sends):
        french, treated = i < 4000, s.arm == "treatment"
        rate = (0.03 if treated else 0.09) if french else 0.09
        if (i // 2) % 100 < rate * 100:
            converted.append(_event(s, "conversion"))
    session.add_all(converted)
    session.flush()
    metrics.record_events(session, converted, in_france)
    session.commit()

    decision = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert decision.outcome == "exclude_segment" and decision.applied, decision.reasons
    assert decision.evidence["segment"] == "France"
    session.refresh(rollout)
    assert rollout.state == "ramping" and rollout.targeting["exclude_segments"] == [france.id]
    audit = session.scalars(sa.select(RolloutAudit).where(RolloutAudit.rollout_id == rollout.id)).one()
    assert (audit.action, audit.actor) == ("exclude_segment", "evaluator")
    events = [d.event for d in session.scalars(sa.select(WebhookDelivery))]
    assert "decision.exclude_segment" in events and "health.segment" in events
    # the next evaluation leaves France out of the whole-arm tests: the rest advances
    again = evaluate(session, rollout.id, now=NOW + timedelta(minutes=5))
    assert again.outcome == "advance", again.reasons


def test_recipients_count_only_once_matured(session: Session) -> None:
    """Sent three hours before NOW: nothing has matured for conversions (72 h), so no gate is met and
    no rate is computed; the same aggregates evaluated three days later advance the stage."""
    rollout = build(session, sent_hours_ago=3)
    early = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert early.outcome == "hold" and early.reasons[0].startswith("not enough matured data: waiting for")
    assert "(0 of " in early.reasons[0]
    matures = datetime.fromisoformat(early.evidence["maturation"]["stage_matures_at"])
    assert NOW + timedelta(hours=69) <= matures <= NOW + timedelta(hours=70)  # newest cohort + 72 h
    assert early.evidence["maturation"]["matured"] is False
    late = evaluate(session, rollout.id, now=NOW + timedelta(hours=73))
    session.commit()
    assert late.outcome == "advance", late.reasons
    assert late.evidence["recipients"]["treatment"] == 300


def test_completed_rollout_is_watched_rolled_back_and_alerted(session: Session) -> None:
    session.add(Webhook(url="http://127.0.0.1:9/hook", secret="s3cret", format="json"))
    rollout = build(session, n_treatment=600, n_control=300, unsubscribed=(60, 1))  # sent after completion
    rollout.state, rollout.stage_index = "completed", 1
    session.add(RolloutAudit(rollout_id=rollout.id, actor="abe", action="advance", from_state="ramping",
                             to_state="completed", reason="done", at=NOW - timedelta(days=5)))  # fmt: skip
    session.commit()
    assert rollout.id in live_rollout_ids(session)  # the periodic evaluator keeps looking
    decision = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert decision.outcome == "rollback" and decision.applied
    assert decision.evidence["health"] == ["guardrail:unsubscribe_rate"]
    assert decision.reasons[0].startswith("after completion, unsubscribe_rate rose")
    assert decision.evidence["summary"].startswith(
        "After reaching everyone, AI content started causing more unsubscribes"
    )
    session.refresh(rollout)
    assert rollout.state == "rolled_back"
    events = [d.event for d in session.scalars(sa.select(WebhookDelivery))]
    assert "decision.rollback" in events and "health.guardrail" in events
    payload = session.scalars(sa.select(WebhookDelivery)).first()
    assert payload is not None and payload.payload["decision"]["summary"] == decision.evidence["summary"]


def test_completed_rollout_without_harm_holds_once(session: Session) -> None:
    rollout = build(session, n_treatment=600, n_control=300, unsubscribed=(2, 1))
    rollout.state, rollout.stage_index = "completed", 1
    session.add(RolloutAudit(rollout_id=rollout.id, actor="abe", action="advance", from_state="ramping",
                             to_state="completed", reason="done", at=NOW - timedelta(days=5)))  # fmt: skip
    session.commit()
    first = evaluate(session, rollout.id, now=NOW)
    session.commit()
    assert first.outcome == "hold" and first.reasons[0].startswith("completed and watched")
    again = evaluate(session, rollout.id, now=NOW + timedelta(minutes=5))  # nothing new: no new row
    assert again.id == first.id
