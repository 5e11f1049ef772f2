"""Evaluate a rollout: read its aggregates, decide, store the decision, apply it, alert.

`evaluate(session, rollout_id)` reads only `ArmMetric` rows of the rollout (a few hundred at most,
whatever the number of events), so it takes milliseconds; `campaigns.decisions.decide` does the
statistics; the verdict is stored as a `models.Decision` with its evidence and applied through the
rollout state machine (`campaigns.rollout.machine.transition`, which writes the audit log). Advances
that need an approver (``decision_mode == "approval"``, or exposure beyond ``approval_from_bp``) are
left as a pending `models.Approval` linked to the decision; pauses and rollbacks protect recipients
and are applied at once in every mode. Webhook deliveries for the decision and any health problem
are created in the same transaction; `run_evaluation` enqueues them after the commit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions import Evidence, Snapshot, Verdict, gate_observation
from campaigns.decisions.explain import summary
from campaigns.decisions.freshness import EVENT_METRICS, SEND_METRICS, resumed_send_at
from campaigns.decisions.learned import cadence_for, with_learned_windows
from campaigns.decisions.policy import parse_config
from campaigns.decisions.srm_contacts import decide_counting_contacts
from campaigns.decisions.watched import watched_periods
from campaigns.errors import InputError, NotFound, StateError
from campaigns.ops import alerts
from campaigns.rollout.stages import parse_plan
from models import ArmMetric, Decision, Rollout, Segment, utcnow

OUTCOME_ACTIONS = {
    "advance": "advance",
    "rollback": "rollback",
    "pause": "pause",
    "exclude_segment": "exclude_segment",
}


Sums = dict[int, dict[str, dict[str, tuple[float, float, float]]]]


def _nested() -> Sums:
    return defaultdict(lambda: defaultdict(dict))


def _frozen(sums: Sums) -> dict[int, dict[str, dict[str, tuple[float, float, float]]]]:
    return {k: {a: dict(m) for a, m in v.items()} for k, v in sums.items()}


def _cutoff(now: datetime, hours: float) -> datetime:
    """Cohorts (send hours) at or before this have matured for a window of `hours`: the cohort's last
    recipient was sent before its hour ended."""
    return now - timedelta(hours=hours + 1)


def load_snapshot(session: Session, rollout: Rollout, now: datetime) -> Snapshot:
    """The rollout's aggregates (all campaigns of the rollout, whole arms and report segments), the
    sums of recipients matured for each maturation window, and freshness times. One query: the
    matured sums are conditional sums over send-time cohorts."""
    config = with_learned_windows(
        session, parse_config(rollout.primary_metric, rollout.guardrails), rollout, now
    )
    windows = sorted({w for w in config.policy.maturation_hours.values() if w > 0})
    matured_cols: list[Any] = []
    for w in windows:
        ripe_cohort = ArmMetric.cohort <= _cutoff(now, w)
        matured_cols += [
            sa.func.sum(sa.case((ripe_cohort, ArmMetric.count), else_=0.0)),
            sa.func.sum(sa.case((ripe_cohort, ArmMetric.total), else_=0.0)),
            sa.func.sum(sa.case((ripe_cohort, ArmMetric.total_sq), else_=0.0)),
        ]
    rows = session.execute(
        sa.select(
            ArmMetric.segment,
            ArmMetric.stage_index,
            ArmMetric.arm,
            ArmMetric.metric,
            sa.func.sum(ArmMetric.count),
            sa.func.sum(ArmMetric.total),
            sa.func.sum(ArmMetric.total_sq),
            sa.func.min(ArmMetric.created_at),
            sa.func.max(ArmMetric.updated_at),
            sa.func.max(ArmMetric.cohort),
            *matured_cols,
        )
        .where(ArmMetric.rollout_id == rollout.id)
        .group_by(ArmMetric.segment, ArmMetric.stage_index, ArmMetric.arm, ArmMetric.metric)
    ).all()
    data: dict[str, Sums] = defaultdict(_nested)
    matured: dict[str, dict[float, Sums]] = defaultdict(lambda: {w: _nested() for w in windows})
    first_send: datetime | None = None
    last_send: datetime | None = None
    last_event: datetime | None = None
    stage_cohort: datetime | None = None
    for (
        segment,
        stage,
        arm,
        metric,
        count,
        total,
        total_sq,
        created_raw,
        updated_raw,
        cohort_raw,
        *ripe,
    ) in rows:
        key = (int(stage), str(arm), str(metric))
        data[segment][key[0]][key[1]][key[2]] = (float(count or 0), float(total or 0), float(total_sq or 0))
        for i, w in enumerate(windows):
            c, t, q = ripe[3 * i : 3 * i + 3]
            matured[segment][w][key[0]][key[1]][key[2]] = (float(c or 0), float(t or 0), float(q or 0))
        if segment:
            continue
        created, updated = _aware(created_raw), _aware(updated_raw)
        if metric in SEND_METRICS:
            first_send = _earliest(first_send, created)
            last_send = _latest(last_send, updated)
            if int(stage) == int(rollout.stage_index):
                stage_cohort = _latest(stage_cohort, _aware(cohort_raw))
        elif metric in EVENT_METRICS:
            last_event = _latest(last_event, updated)
    stages = parse_plan(list(rollout.stages or []))
    names = report_segment_names(session, rollout)
    excluded_ids = set((rollout.targeting or {}).get("exclude_segments") or [])
    segments = {
        label: Evidence(_frozen(data[label]), {w: _frozen(v) for w, v in matured[label].items()})
        for label in data
        if label
    }
    return Snapshot(
        rollout_id=int(rollout.id),
        state=rollout.state,
        killed=bool(rollout.killed),
        stage_index=int(rollout.stage_index),
        stages=stages,
        holdout_bp=int(rollout.holdout_bp or 0),
        config=config,
        data=_frozen(data[""]),
        now=now,
        stage_started_at=getattr(rollout, "stage_started_at", None),
        last_send_at=last_send,
        last_event_at=last_event,
        first_send_at=first_send,
        resumed_send_at=resumed_send_at(session, rollout.id, last_event) if last_event else None,
        matured={w: _frozen(v) for w, v in matured[""].items()},
        segments=segments,
        excluded_segments=tuple(sorted(n for i, n in names.items() if i in excluded_ids and n in segments)),
        stage_last_send_at=None if stage_cohort is None else stage_cohort + timedelta(hours=1),
        manual=getattr(rollout, "plan", "staged") == "manual",
        cadence=cadence_for(session, rollout, stages, config),
        watched=watched_periods(session, rollout) if rollout.state == "completed" else (),
    )


def report_segment_names(session: Session, rollout: Rollout) -> dict[int, str]:
    """Report segment id -> the label its aggregates are kept under (the segment's name)."""
    ids = [int(i) for i in rollout.report_segments or []]
    if not ids:
        return {}
    return {
        int(i): str(n)
        for i, n in session.execute(sa.select(Segment.id, Segment.name).where(Segment.id.in_(ids)))
    }


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _aware(moment: datetime | str | None) -> datetime | None:
    """Aggregated datetimes come back raw from SQLite (text, naive): make them aware UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _verdict(session: Session, rollout: Rollout, now: datetime) -> tuple[Verdict, Snapshot | None]:
    try:
        snapshot = load_snapshot(session, rollout, now)
        return decide_counting_contacts(session, rollout.id, snapshot)
    except InputError as exc:  # a broken plan or guardrails JSON: never decide on it
        return Verdict("hold", (f"cannot evaluate: {exc}",), {"error": str(exc)}, ("config",)), None


def _apply(
    session: Session,
    rollout: Rollout,
    decision: Decision,
    actor: str,
    now: datetime,
    snapshot: Snapshot | None,
) -> dict[str, Any]:
    """Apply through the state machine; what happened goes into the decision's evidence.

    The machine re-checks the stage's gates; it is given the observation read from the aggregates
    (except in shadow stages, whose treatment is counted from shadow renders) so that it does not
    count millions of events again.
    """
    from campaigns.rollout.approvals import request_approval
    from campaigns.rollout.machine import ApprovalRequired, transition

    action = OUTCOME_ACTIONS[decision.outcome]
    reason = "; ".join(decision.reasons) or decision.outcome
    if action == "exclude_segment":
        return _exclude(session, rollout, decision, actor, reason, now)
    observation = None
    if snapshot is not None and not snapshot.stages[snapshot.stage_index].is_shadow:
        observation = gate_observation(snapshot)
    try:
        audit = transition(
            session,
            rollout,
            action,
            actor,
            reason,
            {"decision_id": decision.id, "outcome": decision.outcome},
            now=now,
            observation=observation,
        )
    except ApprovalRequired as exc:
        approval = request_approval(
            session,
            rollout,
            exc.action,
            actor,
            reason,
            evidence={"decision_id": decision.id},
            decision_id=decision.id,
            now=now,
        )
        return {"status": "awaiting_approval", "approval_id": approval.id, "detail": str(exc)}
    except StateError as exc:
        return {"status": "refused", "detail": str(exc)}
    decision.applied = True
    return {"status": "applied", "audit_id": audit.id}


def _exclude(
    session: Session, rollout: Rollout, decision: Decision, actor: str, reason: str, now: datetime
) -> dict[str, Any]:
    """An "exclude segment" verdict: the report segment's id goes into the targeting's exclusions
    through the state machine (audited; reversible with include_segment)."""
    from campaigns.rollout.machine import set_segment

    label = str((decision.evidence or {}).get("segment"))
    ids = [i for i, name in report_segment_names(session, rollout).items() if name == label]
    if not ids:
        return {"status": "refused", "detail": f"no report segment named {label!r}"}
    try:
        audit = set_segment(
            session, rollout, ids[0], "exclude_segment", actor, reason,
            {"decision_id": decision.id, "outcome": decision.outcome}, now=now,
        )  # fmt: skip
    except StateError as exc:
        return {"status": "refused", "detail": str(exc)}
    decision.applied = True
    return {"status": "applied", "audit_id": audit.id, "segment_id": ids[0]}


def evaluate(
    session: Session, rollout_id: int, actor: str = "evaluator", now: datetime | None = None
) -> Decision:
    """Decide for one rollout now; stores the decision (and its webhook deliveries) without committing."""
    now = now or utcnow()
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    verdict, snapshot = _verdict(session, rollout, now)
    previous = session.scalar(
        sa.select(Decision).where(Decision.rollout_id == rollout.id).order_by(Decision.id.desc()).limit(1)
    )
    if (
        rollout.state == "completed"
        and verdict.outcome == "hold"
        and previous is not None
        and previous.outcome == "hold"
        and list(previous.reasons or []) == list(verdict.reasons)
    ):
        return previous  # a watched, completed rollout with nothing new: no new row every five minutes
    decision = Decision(
        rollout_id=rollout.id,
        at=now,
        stage_index=rollout.stage_index,
        outcome=verdict.outcome,
        reasons=list(verdict.reasons),
        evidence={**verdict.evidence, "health": list(verdict.health), "actor": actor},
        applied=False,
    )
    decision.evidence = {
        **decision.evidence,
        "summary": summary(verdict.outcome, verdict.reasons, decision.evidence),
    }
    session.add(decision)
    session.flush()
    if verdict.outcome in OUTCOME_ACTIONS:
        decision.evidence = {
            **decision.evidence,
            "application": _apply(session, rollout, decision, actor, now, snapshot),
        }
    repeated = (
        previous is not None
        and previous.outcome == decision.outcome
        and previous.reasons == decision.reasons
        and previous.stage_index == decision.stage_index
    )
    alerts.queue_decision(session, rollout, decision, repeated=repeated)
    session.flush()
    return decision


def run_evaluation(rollout_id: int, actor: str = "evaluator", now: datetime | None = None) -> int:
    """Evaluate in its own transaction, commit, then enqueue the webhook deliveries. Returns the decision id."""
    from campaigns import runtime

    rt = runtime.current()
    with rt.session() as session:
        decision = evaluate(session, rollout_id, actor=actor, now=now)
        decision_id = int(decision.id)
    alerts.enqueue_for_decision(rt, decision_id)
    return decision_id


def live_rollout_ids(session: Session) -> list[int]:
    """Rollouts the periodic evaluator looks at: live ones and completed ones (watched after 100%)."""
    return [
        int(i)
        for i in session.scalars(
            sa.select(Rollout.id)
            .where(Rollout.state.in_(("shadow", "ramping", "completed")), Rollout.killed.is_(False))
            .order_by(Rollout.id)
        )
    ]


def evaluate_all(now: datetime | None = None) -> list[int]:
    """The periodic job: evaluate every live rollout, and every completed one (its guardrails keep
    watching against the holdout), each in its own transaction; flow steps' rollouts too (no waves)."""
    from campaigns import runtime

    with runtime.current().session() as session:
        ids = live_rollout_ids(session)
    return [run_evaluation(rollout_id, now=now) for rollout_id in ids]


# Periodic jobs as data, for the worker's rq CronScheduler: `func` is a dotted path; the other keys
# are `CronScheduler.register` keyword arguments (the queue name comes from the settings).
CRON_JOBS: tuple[dict[str, Any], ...] = (
    {
        "func": "campaigns.decisions.evaluation.evaluate_all",
        "interval": 300,
        "name": "evaluate_all",
        "job_timeout": 600,
    },
    {"func": "campaigns.ops.alerts.deliver_stuck", "interval": 600, "name": "webhooks_deliver_stuck"},
)


def decision_to_json(decision: Decision, with_evidence: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": decision.id,
        "rollout_id": decision.rollout_id,
        "at": decision.at.isoformat() if decision.at else None,
        "stage_index": decision.stage_index,
        "outcome": decision.outcome,
        "applied": decision.applied,
        "reasons": list(decision.reasons or []),
        "summary": (decision.evidence or {}).get("summary"),
    }
    if with_evidence:
        out["evidence"] = decision.evidence
    return out


def list_decisions(
    session: Session, rollout_id: int, outcome: str | None = None, limit: int = 50
) -> list[Decision]:
    """Newest first."""
    if session.get(Rollout, rollout_id) is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    if outcome is not None and outcome not in ("hold", "include_segment", *OUTCOME_ACTIONS):
        raise InputError(f"must be one of hold, {', '.join(OUTCOME_ACTIONS)}", where="outcome")
    query = (
        sa.select(Decision)
        .where(Decision.rollout_id == rollout_id)
        .order_by(Decision.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    if outcome is not None:
        query = query.where(Decision.outcome == outcome)
    return list(session.scalars(query))
