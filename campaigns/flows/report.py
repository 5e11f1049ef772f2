"""Reports per flow, per step, per arm: what the send ledger says about each send step's sends.

A step's sends are the sends of its hidden campaigns (every version and generation, joined through
`flow_step_campaigns`), counted by arm with the same outcome columns as a campaign's results
(`campaigns.privacy.folding.send_outcomes`: unique human opens and clicks, conversions, revenue,
unsubscribes), plus the outcomes folded away by retention or erasure, so numbers read the same after a
purge. An AI step shows its rollout's state, stage and latest decision. Steps are listed in the order of
the flow's current definition; steps only older versions had come after them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.flows.ai import rollout_summary, step_rollouts
from campaigns.flows.definition import FlowDefinition, SendStep
from campaigns.flows.records import get_flow
from campaigns.privacy.folding import send_outcomes
from campaigns.reports.results import csv_lines
from models import Decision, FlowStepCampaign, FoldedResult, Send
from models.retention import FOLDED_COUNTS

COUNTS = ("planned", "sent", "failed", "skipped", "pending", "bounces", "opens", "clicks", "conversions",
          "unsubscribes", "complaints")  # fmt: skip
ARM_ORDER = ("treatment", "control", "holdout", "excluded")


def _rates(row: dict[str, Any]) -> dict[str, float | None]:
    delivered = max(int(row["sent"]) - int(row["bounces"]), 0)
    row["delivered"] = delivered
    return {
        f"{name}_rate": (row[key] / delivered if delivered else None)
        for name, key in (("open", "opens"), ("click", "clicks"), ("conversion", "conversions"),
                          ("unsubscribe", "unsubscribes"))
    }  # fmt: skip


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTS, 0), "revenue": 0.0}


def step_counts(session: Session, flow_id: int) -> dict[str, dict[str, dict[str, Any]]]:
    """step id -> arm -> counts (ledger rows plus folded outcomes)."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(_empty))
    rows = session.execute(
        sa.select(FlowStepCampaign.step_id, Send.arm, *send_outcomes())
        .join(Send, Send.campaign_id == FlowStepCampaign.campaign_id)
        .where(FlowStepCampaign.flow_id == flow_id)
        .group_by(FlowStepCampaign.step_id, Send.arm)
    ).all()
    for row in rows:
        values = dict(row._mapping)
        target = out[values.pop("step_id")][values.pop("arm")]
        for key in (*COUNTS, "revenue"):
            target[key] += values.get(key) or 0
    folded = session.execute(
        sa.select(FlowStepCampaign.step_id, FoldedResult)
        .join(FoldedResult, FoldedResult.campaign_id == FlowStepCampaign.campaign_id)
        .where(FlowStepCampaign.flow_id == flow_id)
    ).all()
    for step_id, result in folded:
        target = out[step_id][result.arm]
        for key in (*COUNTS, "revenue"):
            if key in FOLDED_COUNTS or key == "revenue":
                target[key] += getattr(result, key) or 0
    return out


def flow_report(session: Session, flow_id: int) -> dict[str, Any]:
    """{"flow": {...}, "steps": [{"step_id", "template_id", "ai_content", "total", "arms", "rollout"}]}."""
    flow = get_flow(session, flow_id)
    definition = FlowDefinition.model_validate(flow.definition)
    counts = step_counts(session, flow.id)
    rollouts = step_rollouts(session, flow.id)
    latest = _latest_decisions(session, [int(r.id) for r in rollouts.values()])
    send_steps = [s for s in definition.steps if isinstance(s, SendStep)]
    order = [s.id for s in send_steps] + sorted(set(counts) - {s.id for s in send_steps})
    by_id = {s.id: s for s in send_steps}
    steps = []
    for step_id in order:
        arms = []
        total = _empty()
        for arm in sorted(counts.get(step_id, {}), key=lambda a: (*ARM_ORDER, a).index(a)):
            row = dict(counts[step_id][arm])
            for key in (*COUNTS, "revenue"):
                total[key] += row[key]
            arms.append({"arm": arm, **row, **_rates(row)})
        total = {**total, **_rates(total)}
        step = by_id.get(step_id)
        rollout = rollouts.get(step_id)
        steps.append({
            "step_id": step_id,
            "in_current_version": step is not None,
            "template_id": step.template_id if step else None,
            "ai_content": bool(step and step.ai_content),
            "total": total,
            "arms": arms,
            "rollout": _rollout(session, rollout, latest) if rollout is not None else None,
        })  # fmt: skip
    return {"flow": {"id": flow.id, "name": flow.name, "state": flow.state, "version": flow.version},
            "steps": steps}  # fmt: skip


def _rollout(session: Session, rollout: Any, latest: dict[int, Decision]) -> dict[str, Any]:
    """The step's rollout, with the forecast's words: what its plan can learn at the step's rate."""
    from campaigns.rollout.plans import plan_forecast

    forecast = plan_forecast(session, rollout)
    return {
        **rollout_summary(rollout, latest.get(int(rollout.id))),
        "forecast": None if forecast is None else forecast.get("words"),
        "cadence": None if forecast is None else (forecast.get("inputs") or {}).get("cadence"),
    }


def _latest_decisions(session: Session, rollout_ids: list[int]) -> dict[int, Decision]:
    if not rollout_ids:
        return {}
    newest = (
        sa.select(sa.func.max(Decision.id))
        .where(Decision.rollout_id.in_(rollout_ids))
        .group_by(Decision.rollout_id)
    )
    return {int(d.rollout_id): d for d in session.scalars(sa.select(Decision).where(Decision.id.in_(newest)))}


CSV_COLUMNS = ["step_id", "arm", "rollout_state", "stage", *COUNTS, "delivered", "revenue", "open_rate",
               "click_rate", "conversion_rate", "unsubscribe_rate"]  # fmt: skip


def flow_report_csv(session: Session, flow_id: int) -> Iterator[str]:
    """One line per step and arm (and the step's total, arm "all"); cells never run as formulas."""
    report = flow_report(session, flow_id)
    rows = []
    for step in report["steps"]:
        rollout = step["rollout"] or {}
        for arm in [*step["arms"], {"arm": "all", **step["total"]}]:
            line = {**arm, "step_id": step["step_id"], "rollout_state": rollout.get("state", ""),
                    "stage": rollout.get("stage") or ""}  # fmt: skip
            rows.append([line.get(c, "") if line.get(c) is not None else "" for c in CSV_COLUMNS])
    return csv_lines(CSV_COLUMNS, rows)
