"""The dashboard: every active rollout at a glance (state, stage, exposure, primary lift with its
interval, guardrails, last decision)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template

from app.auth import require_role
from app.extensions import db
from app.ui import ui
from models import Role, Rollout


@ui.route("/")
@require_role(Role.viewer)
def index() -> str:
    rollouts = db().scalars(sa.select(Rollout).order_by(Rollout.updated_at.desc())).all()
    return render_template("ui/dashboard.html", rollouts=rollouts)
