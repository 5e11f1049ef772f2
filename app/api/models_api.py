"""The model registry: versions with lineage, offline metrics and drift; training, promotion, previews."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api.contacts import int_arg
from app.api.errors import json_body
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.contacts import get_contact
from campaigns.errors import InputError
from campaigns.recommender import drift, jobs, registry
from campaigns.recommender.kinds import KINDS
from campaigns.recommender.rules import CampaignRules
from campaigns.recommender.service import score_contact
from models import ModelVersion, Role

VERSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["training", "ready", "failed"]},
        "role": {"type": "string", "enum": ["champion", "challenger", ""]},
        "params": {"type": "object"},
        "train_start": {"type": ["string", "null"]},
        "train_end": {"type": ["string", "null"]},
        "n_rows": {"type": "integer"},
        "metrics": {"type": "object"},
        "drift": {"type": "object"},
        "sha256": {"type": "string"},
        "trained_by": {"type": "string"},
        "pinned_by_rollouts": {"type": "array", "items": {"type": "integer"}},
    },
}


def version_json(version: ModelVersion, pinned: list[int]) -> dict[str, Any]:
    return {
        "id": version.id,
        "name": version.name,
        "kind": version.kind,
        "status": version.status,
        "role": version.role,
        "params": version.params,
        "train_start": version.train_start.isoformat() if version.train_start else None,
        "train_end": version.train_end.isoformat() if version.train_end else None,
        "n_rows": version.n_rows,
        "metrics": version.metrics,
        "drift": version.drift,
        "sha256": version.sha256,
        "trained_by": version.trained_by,
        "error": version.error,
        "created_at": version.created_at.isoformat(),
        "pinned_by_rollouts": pinned,
    }


@route(
    "/models",
    "GET",
    role=Role.viewer,
    summary="Model versions, newest first",
    query={"limit": "1..500, default 100"},
    response={"type": "object", "properties": {"versions": {"type": "array", "items": VERSION_SCHEMA}}},
    tag="models",
)
def models_list() -> Response:
    session = db()
    versions = registry.versions(session, limit=max(1, min(int_arg("limit", 100), 500)))
    return jsonify(versions=[version_json(v, registry.pinned_by(session, v.id)) for v in versions])


@route(
    "/models/<int:version_id>",
    "GET",
    role=Role.viewer,
    summary="One model version",
    response=VERSION_SCHEMA,
    tag="models",
)
def models_get(version_id: int) -> Response:
    session = db()
    return jsonify(version_json(registry.get(session, version_id), registry.pinned_by(session, version_id)))


@route(
    "/models",
    "POST",
    role=Role.approver,
    summary="Train a new version on a worker (202 with the job id)",
    body={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS), "default": "blend"},
            "params": {"type": "object", "description": 'estimator parameters, e.g. {"discovery__l2": 300}'},
            "window_days": {"type": ["integer", "null"], "description": "train on the last N days only"},
        },
    },
    tag="models",
)
def models_train() -> tuple[Response, int]:
    body = json_body()
    kind = body.get("kind", "blend")
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}", where="kind")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise InputError("params must be an object", where="params")
    window = body.get("window_days")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise InputError("window_days must be a whole number >= 1", where="window_days")
    job_id = jobs.enqueue_training(get_runtime(), kind, params, actor(), window)
    return jsonify(job_id=job_id, kind=kind), 202


@route(
    "/models/<int:version_id>/promote",
    "POST",
    role=Role.approver,
    summary="Give a ready version a role (champion by default); rollouts that pinned a version keep it",
    body={
        "type": "object",
        "properties": {"role": {"type": "string", "enum": ["champion", "challenger", ""]}},
    },
    response=VERSION_SCHEMA,
    tag="models",
)
def models_promote(version_id: int) -> Response:
    body = request.get_json(silent=True) or {}
    session = db()
    version = registry.promote(session, version_id, str(body.get("role", "champion")))
    session.commit()
    return jsonify(version_json(version, registry.pinned_by(session, version_id)))


@route(
    "/models/<int:version_id>/drift",
    "GET",
    role=Role.viewer,
    summary="The version's last drift report (country mix and price PSI, unknown contacts and items)",
    tag="models",
)
def models_drift(version_id: int) -> Response:
    version = registry.get(db(), version_id)
    return jsonify(version_id=version.id, drift=version.drift, level=(version.drift or {}).get("level"))


@route(
    "/models/<int:version_id>/drift",
    "POST",
    role=Role.marketer,
    summary="Re-measure drift against today's contacts and catalog, and store it",
    tag="models",
)
def models_drift_measure(version_id: int) -> Response:
    session = db()
    report = drift.record(session, registry.get(session, version_id))
    session.commit()
    return jsonify(version_id=version_id, drift=report, level=report.get("level"))


@route(
    "/models/<int:version_id>/recommendations/<int:contact_id>",
    "GET",
    role=Role.viewer,
    summary="What this version would recommend to a contact now (shadow preview; nothing stored or sent)",
    query={
        "limit": "1..50, default 6",
        "category": "only this category (repeatable)",
        "min_price": "lowest price",
        "max_price": "highest price",
        "max_per_category": "at most N per category",
    },
    tag="models",
)
def models_recommend(version_id: int, contact_id: int) -> Response:
    session = db()
    get_contact(session, contact_id)
    rules = CampaignRules.from_mapping(_rules_from_query())
    recs = score_contact(session, version_id, contact_id, max(1, min(int_arg("limit", 6), 50)), rules)
    return jsonify(
        version_id=version_id,
        contact_id=contact_id,
        recommendations=[{**rec.__dict__} for rec in recs],
    )


def _rules_from_query() -> dict[str, Any]:
    raw: dict[str, Any] = {}
    categories = request.args.getlist("category")
    if categories:
        raw["categories"] = categories
    for name in ("min_price", "max_price"):
        value = request.args.get(name)
        if value:
            try:
                raw[name] = float(value)
            except ValueError:
                raise InputError(f"{name} must be a number, not {value!r}", where=name) from None
    if request.args.get("max_per_category"):
        raw["max_per_category"] = int_arg("max_per_category", 0)
    return raw
