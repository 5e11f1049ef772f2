"""AI send steps behind a rollout: one rollout per step series (`flow:<flow>:<step>`).

A send step with `ai_content` gets its rollout the way a campaign with `ai` does: through
`campaigns.rollout.changes.create_rollout` with a plan sized by the planner (`plans.sized_default`),
here to the step's daily rate (`campaigns.rollout.flow_rate`: stated `entries_per_day`, the step's
or the trigger's last 28 days), then started through the state machine (audited). It is made when the
flow is activated, or when the step first sends (a step added by an edit of an active flow); a
rollout made beforehand with the step's series (`POST /rollouts` with `series`) is used as it is.

Every hidden campaign of the step (one per version and generation) carries the rollout's id, so the
send path assigns arms, buckets and stages exactly as for a campaign's wave (campaigns.sending.arms),
the recommender personalises the treatment's content, and AI waves are scored before they send. The
evaluator's periodic job judges the rollout on matured evidence every five minutes, whatever the
waves; a rollback (or the kill switch) sends control content from the next send on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.flows.definition import FlowDefinition, SendStep
from campaigns.rollout.flow_rate import flow_cadence, step_series
from models import Flow, Rollout

PRIMARY_METRIC = "conversion_rate"


def ai_steps(definition: FlowDefinition) -> list[SendStep]:
    return [s for s in definition.steps if isinstance(s, SendStep) and s.ai_content]


def find_step_rollout(session: Session, flow_id: int, step_id: str) -> Rollout | None:
    """The step series' rollout (the latest, when someone made several)."""
    return session.scalars(
        sa.select(Rollout)
        .where(Rollout.series == step_series(flow_id, step_id))
        .order_by(Rollout.id.desc())
        .limit(1)
    ).first()


def step_rollout(session: Session, flow: Flow, step: SendStep, actor: str = "") -> int:
    """The rollout of the step's series: found, or created with a plan sized to the step's daily rate
    and started. Making one locks the flow row first, so two workers never make two; finding one
    takes no lock (a scheduler tick holding entry locks never waits on the flow row then)."""
    found = find_step_rollout(session, flow.id, step.id)
    if found is not None:
        return int(found.id)
    session.scalar(sa.select(Flow.id).where(Flow.id == flow.id).with_for_update())
    found = find_step_rollout(session, flow.id, step.id)
    if found is not None:
        return int(found.id)
    from campaigns.rollout.changes import create_rollout
    from campaigns.rollout.machine import transition
    from campaigns.rollout.plans import default_holdout_bp, sized_default

    actor = actor or flow.created_by or "flows"
    series = step_series(flow.id, step.id)
    cadence = flow_cadence(session, series)
    holdout = default_holdout_bp(session, None, primary_metric=PRIMARY_METRIC, cadence=cadence)
    stages = sized_default(
        session, None, cap_bp=10_000, holdout_bp=holdout, primary_metric=PRIMARY_METRIC, cadence=cadence,
    )  # fmt: skip
    rollout = create_rollout(
        session, f"AI content: {flow.name} / {step.id}"[:200], actor, series=series, stages=stages,
        holdout_bp=holdout, plan="staged", primary_metric=PRIMARY_METRIC,
    )  # fmt: skip
    transition(session, rollout, "start", actor, f"started with flow {flow.name!r}, step {step.id!r}")
    return int(rollout.id)


def ensure_step_rollouts(session: Session, flow: Flow, actor: str = "") -> dict[str, int]:
    """step id -> rollout id for every AI send step of the flow's current definition."""
    definition = FlowDefinition.model_validate(flow.definition)
    return {step.id: step_rollout(session, flow, step, actor) for step in ai_steps(definition)}


def step_rollouts(session: Session, flow_id: int) -> dict[str, Rollout]:
    """step id -> its rollout, for the steps that have one."""
    prefix = step_series(flow_id, "")
    out: dict[str, Rollout] = {}
    for rollout in session.scalars(
        sa.select(Rollout).where(Rollout.series.like(f"{prefix}%")).order_by(Rollout.id)
    ):
        out[rollout.series[len(prefix) :]] = rollout  # the latest wins
    return out


def rollout_summary(rollout: Rollout, latest: Any = None) -> dict[str, Any]:
    """What a report shows of a step's rollout: its state, stage, exposure and latest decision."""
    stages = list(rollout.stages or [])
    stage = stages[rollout.stage_index] if 0 <= rollout.stage_index < len(stages) else None
    return {
        "id": rollout.id,
        "name": rollout.name,
        "state": rollout.state,
        "killed": bool(rollout.killed),
        "stage_index": rollout.stage_index,
        "stage": stage.get("name") if isinstance(stage, dict) else None,
        "exposure_bp": stage.get("exposure_bp") if isinstance(stage, dict) else None,
        "holdout_bp": rollout.holdout_bp,
        "decision": None
        if latest is None
        else {
            "outcome": latest.outcome,
            "at": latest.at.isoformat() if latest.at else None,
            "summary": (latest.evidence or {}).get("summary"),
            "reasons": list(latest.reasons or []),
        },
    }
