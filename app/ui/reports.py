"""Printable reports: per rollout (stage timeline, decisions with evidence, charts, results of each
campaign). The campaign report lives with the campaign pages. CSV exports are the API's streams."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import render_template

from app.auth import require_role
from app.extensions import db
from app.ui.blueprint import ui
from app.ui.charts import exposure_chart, funnel_chart, primary_charts
from campaigns.reports import results as reports
from campaigns.rollout import service
from campaigns.rollout.audit import history
from campaigns.rollout.shadow import shadow_report
from campaigns.rollout.status import rollout_status
from models import Campaign, Decision, Role


@ui.route("/rollouts/<int:rollout_id>/report")
@require_role(Role.viewer)
def rollouts_report(rollout_id: int) -> str:
    rollout = service.get_rollout(db(), rollout_id)
    decisions = list(
        db().scalars(
            sa.select(Decision).where(Decision.rollout_id == rollout_id).order_by(Decision.id.desc())
        )
    )
    audits = history(db(), rollout_id)
    campaigns = (
        db().scalars(sa.select(Campaign).where(Campaign.rollout_id == rollout_id).order_by(Campaign.id)).all()
    )
    results = [(c, reports.campaign_results(db(), c.id)) for c in campaigns]
    return render_template(
        "ui/rollout_report.html",
        rollout=rollout,
        status=rollout_status(db(), rollout),
        decisions=decisions,
        audits=audits,
        campaign_results=[(c, r, funnel_chart(r)) for c, r in results],
        exposure=exposure_chart(rollout, audits, decisions),
        primary=primary_charts(decisions),
        shadow=shadow_report(db(), rollout_id),
        generated_at=datetime.now(UTC),
    )
