"""A rollout as the control panel and the API show it: settings, where it stands, what may happen next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import StateError
from campaigns.rollout.approvals import approval_to_json, pending_approvals
from campaigns.rollout.evidence import observe
from campaigns.rollout.gates import active_freeze, parse_freeze_windows, unmet_gates
from campaigns.rollout.machine import ACTION_ROLES, ACTIONS, exposure_after, needs_approval, target_of
from campaigns.rollout.plans import plan_forecast
from campaigns.rollout.stages import BASIS_POINTS, parse_plan, plan_to_json
from models import Rollout, RolloutAudit, Segment, Send, utcnow


def current_exposure_bp(rollout: Rollout) -> int:
    """Share of eligible contacts receiving AI content now (0 when killed)."""
    if rollout.killed or rollout.state in ("draft", "rolled_back"):
        return 0
    stages = parse_plan(list(rollout.stages or []))
    if rollout.state == "completed":  # the last stage's exposure (a campaign's cap), holdout kept
        last = stages[-1]
        return min(
            last.exposure_bp if last.kind == "percent" else BASIS_POINTS, BASIS_POINTS - rollout.holdout_bp
        )
    return min(exposure_after(rollout, stages, rollout.stage_index), BASIS_POINTS - rollout.holdout_bp)


def where_now(rollout: Rollout) -> str:
    """The rollout's state and stage as its page says them: "rolled back at stage 1% (1 of 6), AI
    exposure now 0%" (never the raw `rolled_back` or a 0-based stage index)."""
    stages = list(rollout.stages or [])
    state = str(rollout.state).replace("_", " ")
    text = state
    if 0 <= rollout.stage_index < len(stages) and rollout.state not in ("draft", "completed"):
        stage = stages[rollout.stage_index]
        name = str(stage.get("name", "")) if isinstance(stage, dict) else ""
        where = f"{rollout.stage_index + 1} of {len(stages)}"
        text += f" at stage {name} ({where})" if name else f" at stage {where}"
    exposure = current_exposure_bp(rollout)
    text += f", AI exposure now {exposure / 100:g}%"
    return text + (", kill switch on" if rollout.killed else "")


def rollout_summary(rollout: Rollout) -> dict[str, Any]:
    """The row without database reads: for lists."""
    stages = list(rollout.stages or [])
    stage = stages[rollout.stage_index] if 0 <= rollout.stage_index < len(stages) else None
    return {
        "id": rollout.id,
        "name": rollout.name,
        "series": rollout.series,
        "state": rollout.state,
        "killed": rollout.killed,
        "stage_index": rollout.stage_index,
        "stage": stage,
        "exposure_bp": current_exposure_bp(rollout),
        "holdout_bp": rollout.holdout_bp,
        "plan": rollout.plan or "staged",
        "manual_plan": rollout.plan == "manual",
        "model_version_id": rollout.model_version_id,
        "updated_at": rollout.updated_at.isoformat() if rollout.updated_at else None,
    }


def next_actions(rollout: Rollout, now: datetime) -> list[dict[str, Any]]:
    """Each action valid from here, with the role it needs and what stands in its way."""
    stages = parse_plan(list(rollout.stages or []))
    freeze = active_freeze(parse_freeze_windows(rollout.freeze_windows), now)
    out = []
    for action in ACTIONS:
        try:
            to_state, to_stage = target_of(rollout, action, stages)
        except StateError:
            continue
        blocked = []
        if action in ("start", "advance"):
            if rollout.killed:
                blocked.append("killed")
            if freeze is not None:
                blocked.append(f"freeze window until {freeze.end.isoformat()}")
        out.append(
            {
                "action": action,
                "role": ACTION_ROLES[action].value,
                "to_state": to_state,
                "to_stage": min(to_stage, len(stages) - 1),
                "needs_approval": needs_approval(rollout, action, exposure_after(rollout, stages, to_stage)),
                "blocked": blocked,
            }
        )
    return out


def rollout_status(
    session: Session, rollout: Rollout, now: datetime | None = None, *, with_forecast: bool = True
) -> dict[str, Any]:
    """Everything the control panel shows for one rollout (lists leave the forecast out)."""
    now = now or utcnow()
    stages = parse_plan(list(rollout.stages or []))
    freeze = active_freeze(parse_freeze_windows(rollout.freeze_windows), now)
    gates: dict[str, Any] | None = None
    if rollout.state in ("shadow", "ramping", "paused") and 0 <= rollout.stage_index < len(stages):
        observed = observe(session, rollout, now)
        gates = {
            "observed": observed.to_json(),
            "unmet": unmet_gates(stages[rollout.stage_index].gates, observed, now),
        }
    return {
        **rollout_summary(rollout),
        "salt": rollout.salt,
        "stages": plan_to_json(stages),
        "targeting": rollout.targeting,
        "primary_metric": rollout.primary_metric,
        "guardrails": rollout.guardrails,
        "decision_mode": rollout.decision_mode,
        "approval_from_bp": rollout.approval_from_bp,
        "freeze_windows": rollout.freeze_windows,
        "active_freeze": freeze.to_json() if freeze else None,
        "stage_started_at": rollout.stage_started_at.isoformat() if rollout.stage_started_at else None,
        "killed_at": rollout.killed_at.isoformat() if rollout.killed_at else None,
        "previous_model_version_id": rollout.previous_model_version_id,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at.isoformat() if rollout.created_at else None,
        "gates": gates,
        "maturation": maturation(session, rollout, now),
        "forecast": plan_forecast(session, rollout) if with_forecast else None,
        "report_segments": report_segments(session, rollout),
        "next_actions": next_actions(rollout, now),
        "pending_approvals": [approval_to_json(a) for a in pending_approvals(session, rollout.id)],
        "completed_without_evidence": completed_without_evidence(session, rollout),
    }


def completed_without_evidence(session: Session, rollout: Rollout) -> bool:
    """Did an approver complete the rollout before its evidence could show the harm that matters?"""
    if rollout.state != "completed":
        return False
    evidence = session.scalar(
        sa.select(RolloutAudit.evidence)
        .where(RolloutAudit.rollout_id == rollout.id, RolloutAudit.to_state == "completed")
        .order_by(RolloutAudit.id.desc())
        .limit(1)
    )
    return bool(((evidence or {}).get("snapshot") or {}).get("completed_without_evidence"))


def maturation(session: Session, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """When the current stage's evidence matures: its newest recipient plus the primary metric's
    window (a recipient counts toward gates and tests only from then on)."""
    from campaigns.decisions.policy import METRIC_DEFS, parse_config
    from campaigns.errors import InputError

    try:
        config = parse_config(rollout.primary_metric, rollout.guardrails)
        event = METRIC_DEFS[config.primary_metric].numerator
        windows = dict(config.policy.maturation_hours)
    except InputError:
        event, windows = "conversion", {}
    newest = session.scalar(
        sa.select(sa.func.max(Send.sent_at)).where(
            Send.rollout_id == rollout.id, Send.stage_index == rollout.stage_index, Send.state == "sent"
        )
    )
    if isinstance(newest, datetime) and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    window = float(windows.get(event, 0.0))
    matures = newest + timedelta(hours=window) if newest is not None else None
    return {
        "metric_event": event,
        "window_hours": window,
        "windows_hours": windows,
        "stage_last_sent_at": newest.isoformat() if newest else None,
        "stage_matures_at": matures.isoformat() if matures else None,
        "matured": matures is not None and matures <= now,
    }


def report_segments(session: Session, rollout: Rollout) -> list[dict[str, Any]]:
    """The rollout's report segments, each with whether it is excluded from the rollout now."""
    ids = [int(i) for i in rollout.report_segments or []]
    excluded = {int(i) for i in (rollout.targeting or {}).get("exclude_segments") or []}
    names = (
        dict(session.execute(sa.select(Segment.id, Segment.name).where(Segment.id.in_(ids))).all())
        if ids
        else {}
    )
    return [{"id": i, "name": names.get(i), "excluded": i in excluded} for i in ids]


def list_rollouts(session: Session, state: str | None = None) -> list[Rollout]:
    query = sa.select(Rollout).order_by(Rollout.id.desc())
    if state:
        query = query.where(Rollout.state == state)
    return list(session.scalars(query))
