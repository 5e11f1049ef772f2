"""Campaigns: create and schedule, send waves, progress, results per arm, streamed CSV exports."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from flask import Response, jsonify, stream_with_context
from pydantic import Field

from app.api.responses import CampaignList, CampaignOut, CampaignWithProgress
from app.api.responses_people import CampaignResults, WaveStarted
from app.api.responses_rollouts import CampaignCreated
from app.api.schema import BIGINT_MAX, ApiModel, Id, Name
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.campaign_records import create_campaign, get_campaign
from campaigns.jobs import start_wave
from campaigns.reports.results import campaign_progress, campaign_results, results_csv, sends_csv
from campaigns.sending.planner import cancel_campaign
from models import Campaign, Role, Rollout


class Schedule(ApiModel):
    kind: Literal["now", "at", "recurring"] = "now"
    send_at: str | None = Field(None, description="ISO 8601 date-time; without an offset: in `timezone`")
    cron: str | None = None
    timezone: str | None = Field(None, max_length=100, description="IANA name; default UTC")


class AiSettings(ApiModel):
    """AI content in a staged rollout: a plan sized to the audience (or the workspace's edited default), its ramp stopped at exposure_percent."""

    exposure_percent: float = Field(100, ge=0, le=100, description="the cap where the ramp stops")
    holdout_percent: float | None = Field(
        None,
        ge=0,
        le=100,
        description="default: sized to the audience (5% to 50%) so that the watch after 100% catches a tripling "
        "of unsubscribes within 3 sends (5% where even 50% would not); an edited workspace plan's holdout wins",
    )
    plan: Literal["staged", "manual"] = Field(
        "staged", description="manual: one stage at exposure_percent (or the given stages), marked as such"
    )
    stages: list[dict[str, Any]] | None = Field(None, max_length=50, description="an explicit plan")
    primary_metric: str | None = Field(None, max_length=100)
    mode: Literal["learn", "protect"] | None = Field(
        None,
        description="a list too small to judge the primary metric: protect (ramp on unsubscribes and "
        "complaints, the default then) or learn (hold until the primary metric can be judged)",
    )
    model_version_id: Id | None = None
    start: bool = Field(True, description="start the rollout with the campaign")


class RecommendationRules(ApiModel):
    """Filters on the AI block's items."""

    categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    max_per_category: int | None = Field(None, ge=1, le=1000)


class CampaignIn(ApiModel):
    name: Name
    template_id: Id
    segment_id: Id | None = Field(None, description="null: every sendable contact")
    subject: str = Field("", max_length=2000, description="empty: the template's subject")
    from_email: str = Field(max_length=320)
    from_name: str = Field("", max_length=200)
    schedule: Schedule | None = None
    wave_size: int | None = Field(None, ge=1, le=BIGINT_MAX)
    series: str = Field("", max_length=200)
    ai: AiSettings | None = None
    rollout_id: Id | None = Field(None, description="join an existing rollout (a campaign series)")
    recommendation_rules: RecommendationRules | None = None


class WaveIn(ApiModel):
    limit: int | None = Field(None, ge=1, le=BIGINT_MAX, description="null: every contact that remains")


def campaign_json(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "template_id": c.template_id,
        "segment_id": c.segment_id,
        "rollout_id": c.rollout_id,
        "subject": c.subject,
        "from_email": c.from_email,
        "from_name": c.from_name,
        "send_at": c.send_at.isoformat() if c.send_at else None,
        "cron": c.cron,
        "timezone": c.timezone,
        "wave_size": c.wave_size,
        "recommendation_rules": c.recommendation_rules,
        "series": c.series,
        "parent_id": c.parent_id,
        "created_at": c.created_at.isoformat(),
    }


@route(
    "/campaigns", "GET", role=Role.viewer, summary="List campaigns", tag="campaigns", response=CampaignList
)
def list_campaigns() -> Response:
    rows = db().scalars(
        sa.select(Campaign).where(Campaign.kind == "campaign").order_by(Campaign.id.desc()).limit(500)
    )
    return jsonify(campaigns=[campaign_json(c) for c in rows])


@route(
    "/campaigns",
    "POST",
    role=Role.marketer,
    summary="Create a campaign",
    body=CampaignIn,
    tag="campaigns",
    status=201,
    response=CampaignCreated,
)
def create(body: CampaignIn) -> tuple[Response, int]:
    campaign = create_campaign(db(), body.model_dump(exclude_none=True), actor())
    db().commit()
    out = campaign_json(campaign)
    if campaign.rollout_id is not None:  # the plan's forecast, before anything is sent
        from campaigns.rollout.plans import plan_forecast

        rollout = db().get(Rollout, campaign.rollout_id)
        out["rollout_forecast"] = plan_forecast(db(), rollout) if rollout is not None else None
    return jsonify(out), 201


@route(
    "/campaigns/<int:campaign_id>",
    "GET",
    role=Role.viewer,
    summary="One campaign with progress",
    tag="campaigns",
    response=CampaignWithProgress,
)
def get(campaign_id: int) -> Response:
    return jsonify(
        {**campaign_json(get_campaign(db(), campaign_id)), "progress": campaign_progress(db(), campaign_id)}
    )


@route(
    "/campaigns/<int:campaign_id>/cancel",
    "POST",
    role=Role.marketer,
    summary="Cancel a campaign",
    tag="campaigns",
    response=CampaignOut,
)
def cancel(campaign_id: int) -> Response:
    campaign = cancel_campaign(db(), campaign_id)
    db().commit()
    return jsonify(campaign_json(campaign))


@route(
    "/campaigns/<int:campaign_id>/waves",
    "POST",
    role=Role.marketer,
    tag="campaigns",
    summary="Send a wave: the next `limit` contacts of the audience (all that remain when omitted)",
    body=WaveIn,
    status=202,
    response=WaveStarted,
)
def send_wave(campaign_id: int, body: WaveIn) -> tuple[Response, int]:
    get_campaign(db(), campaign_id)
    wave = start_wave(get_runtime(), campaign_id, body.limit)
    return jsonify(wave), 202


@route(
    "/campaigns/<int:campaign_id>/results",
    "GET",
    role=Role.viewer,
    tag="campaigns",
    summary="Sent, delivered, failed, opens, clicks, conversions, revenue, unsubscribes per arm, with rates",
    response=CampaignResults,
)
def results(campaign_id: int) -> Response:
    get_campaign(db(), campaign_id)
    return jsonify(campaign_id=campaign_id, arms=[r.as_dict() for r in campaign_results(db(), campaign_id)])


@route(
    "/campaigns/<int:campaign_id>/results.csv",
    "GET",
    role=Role.viewer,
    content="text/csv",
    summary="Results per arm as CSV",
    tag="campaigns",
)
def results_export(campaign_id: int) -> Response:
    get_campaign(db(), campaign_id)
    return _csv(results_csv(db(), campaign_id), f"campaign-{campaign_id}-results.csv")


@route(
    "/campaigns/<int:campaign_id>/sends.csv",
    "GET",
    role=Role.viewer,
    content="text/csv",
    summary="Every send with its engagement, streamed as CSV",
    tag="campaigns",
)
def sends_export(campaign_id: int) -> Response:
    get_campaign(db(), campaign_id)
    factory = get_runtime().session_factory
    return _csv(sends_csv(factory, campaign_id), f"campaign-{campaign_id}-sends.csv")


def _csv(lines: Any, filename: str) -> Response:
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
