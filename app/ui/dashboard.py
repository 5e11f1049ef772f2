"""The dashboard: every active rollout at a glance (state, stage, exposure, primary lift with its
interval, guardrail status, last decision), then recent campaigns."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template

from app.auth import require_role
from app.extensions import db
from app.ui.blueprint import ui
from campaigns.rollout.status import rollout_summary
from models import Approval, Campaign, Decision, Role, Rollout

ACTIVE = ("draft", "shadow", "ramping", "paused")


def _last_decisions(rollout_ids: list[int]) -> dict[int, Decision]:
    if not rollout_ids:
        return {}
    newest = (
        sa.select(sa.func.max(Decision.id))
        .where(Decision.rollout_id.in_(rollout_ids))
        .group_by(Decision.rollout_id)
    )
    return {d.rollout_id: d for d in db().scalars(sa.select(Decision).where(Decision.id.in_(newest)))}


def guardrail_status(decision: Decision | None) -> dict[str, Any]:
    """What the last evaluation said about guardrails: the health problems it raised, if any."""
    if decision is None:
        return {"state": "unknown", "problems": []}
    evidence = decision.evidence or {}
    problems = [h for h in evidence.get("health", []) if h.startswith(("guardrail:", "cap:", "srm", "stale"))]
    if problems:
        return {"state": "bad", "problems": problems}
    if evidence.get("guardrails") or evidence.get("caps"):
        return {"state": "ok", "problems": []}
    return {"state": "unknown", "problems": []}


@ui.route("/")
@require_role(Role.viewer)
def index() -> str:
    rollouts = list(
        db().scalars(sa.select(Rollout).where(Rollout.state.in_(ACTIVE)).order_by(Rollout.updated_at.desc()))
    )
    last = _last_decisions([r.id for r in rollouts])
    pending = dict(
        db()
        .execute(
            sa.select(Approval.rollout_id, sa.func.count())
            .where(Approval.status == "pending")
            .group_by(Approval.rollout_id)
        )
        .all()
    )
    rows = [
        {
            **rollout_summary(r),
            "stages_total": len(r.stages or []),
            "decision": last.get(r.id),
            "primary": ((last[r.id].evidence or {}).get("primary") if r.id in last else None),
            "guardrails": guardrail_status(last.get(r.id)),
            "pending": pending.get(r.id, 0),
        }
        for r in rollouts
    ]
    recent = (
        db()
        .scalars(sa.select(Campaign).where(Campaign.kind == "campaign").order_by(Campaign.id.desc()).limit(8))
        .all()
    )
    finished = db().scalar(sa.select(sa.func.count()).where(Rollout.state.not_in(ACTIVE))) or 0
    from app.ui.demo_views import demo_state

    return render_template(
        "ui/dashboard.html", rollouts=rows, campaigns=recent, finished=finished, demo=demo_state()
    )
