"""The audit log of every rollout: who did what, when, from which state to which, why, with evidence."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request

from app.auth import require_role
from app.extensions import db
from app.ui import ui
from app.ui.actions import arg_int
from app.ui.tables import TableState
from models import Role, Rollout, RolloutAudit

PAGE_SIZE = 100


@ui.route("/audit")
@require_role(Role.viewer)
def audit() -> str:
    page = max(arg_int("page", 1), 1)
    rollout_id = request.args.get("rollout", type=int)
    query = sa.select(RolloutAudit, Rollout.name).join(Rollout, Rollout.id == RolloutAudit.rollout_id)
    if rollout_id:
        query = query.where(RolloutAudit.rollout_id == rollout_id)
    rows = (
        db()
        .execute(
            query.order_by(RolloutAudit.at.desc(), RolloutAudit.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        )
        .all()
    )
    rollouts = db().execute(sa.select(Rollout.id, Rollout.name).order_by(Rollout.name)).all()
    counted = sa.select(sa.func.count()).select_from(RolloutAudit)
    total = int(
        db().scalar(counted.where(RolloutAudit.rollout_id == rollout_id) if rollout_id else counted) or 0
    )
    return render_template(
        "ui/audit.html",
        rows=rows[:PAGE_SIZE],
        has_next=len(rows) > PAGE_SIZE,
        table=TableState(sort="", descending=False, page=page, per_page=PAGE_SIZE, total=total),
        page=page,
        rollout_id=rollout_id,
        rollouts=rollouts,
    )
