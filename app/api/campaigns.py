"""Campaigns: create and schedule, send waves, progress, results per arm, streamed CSV exports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request, stream_with_context

from app.api.errors import json_body
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.campaigns import cancel_campaign, create_campaign, get_campaign
from campaigns.errors import InputError
from campaigns.jobs import start_wave
from campaigns.reports import campaign_progress, campaign_results, results_csv, sends_csv
from models import Campaign, Role

CAMPAIGN_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "template_id": {"type": "integer"},
        "segment_id": {"type": ["integer", "null"], "description": "null: every sendable contact"},
        "subject": {"type": "string", "description": "empty: the template's subject"},
        "from_email": {"type": "string"},
        "from_name": {"type": "string"},
        "schedule": {
            "type": "object",
            "properties": {
                "kind": {"enum": ["now", "at", "recurring"]},
                "send_at": {"type": "string", "format": "date-time"},
                "cron": {"type": "string"},
                "timezone": {"type": "string"},
            },
        },
        "wave_size": {"type": ["integer", "null"]},
        "series": {"type": "string"},
        "ai": {
            "type": "object",
            "description": "AI content in a staged rollout: the workspace's default plan, its ramp stopped "
            "at exposure_percent",
            "properties": {
                "exposure_percent": {
                    "type": "number",
                    "description": "the cap where the ramp stops (default 100)",
                },
                "holdout_percent": {"type": "number", "description": "default: the workspace plan's holdout"},
                "plan": {
                    "enum": ["staged", "manual"],
                    "description": "manual: one stage at exposure_percent",
                },
                "stages": {"type": "array", "items": {"type": "object"}},
                "primary_metric": {"type": "string"},
                "model_version_id": {"type": "integer"},
            },
        },
        "rollout_id": {"type": "integer", "description": "join an existing rollout (a campaign series)"},
        "recommendation_rules": {
            "type": "object",
            "description": "filters on the AI block's items",
            "properties": {
                "categories": {"type": "array"},
                "exclude_categories": {"type": "array"},
                "min_price": {"type": "number"},
                "max_price": {"type": "number"},
                "max_per_category": {"type": "integer"},
            },
        },
    },
    "required": ["name", "template_id", "from_email"],
}


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


@route("/campaigns", "GET", role=Role.viewer, summary="List campaigns", tag="campaigns")
def list_campaigns() -> Response:
    rows = db().scalars(sa.select(Campaign).order_by(Campaign.id.desc()).limit(500))
    return jsonify(campaigns=[campaign_json(c) for c in rows])


@route(
    "/campaigns", "POST", role=Role.marketer, summary="Create a campaign", body=CAMPAIGN_BODY, tag="campaigns"
)
def create() -> tuple[Response, int]:
    campaign = create_campaign(db(), json_body(), actor())
    db().commit()
    return jsonify(campaign_json(campaign)), 201


@route(
    "/campaigns/<int:campaign_id>",
    "GET",
    role=Role.viewer,
    summary="One campaign with progress",
    tag="campaigns",
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
    body={"type": "object", "properties": {"limit": {"type": ["integer", "null"]}}},
)
def send_wave(campaign_id: int) -> tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    limit = body.get("limit") if isinstance(body, dict) else None
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise InputError(f"must be a whole number of contacts, not {limit!r}", where="limit")
    get_campaign(db(), campaign_id)
    wave = start_wave(get_runtime(), campaign_id, limit)
    return jsonify(wave), 202


@route(
    "/campaigns/<int:campaign_id>/results",
    "GET",
    role=Role.viewer,
    tag="campaigns",
    summary="Sent, delivered, failed, opens, clicks, conversions, revenue, unsubscribes per arm, with rates",
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
