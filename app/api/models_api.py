"""The model registry: versions with lineage, offline metrics and drift; training, promotion, previews."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify
from pydantic import Field, field_validator

from app.api.responses_people import (
    DriftOut,
    ModelVersionList,
    ModelVersionOut,
    RecommendationPreview,
    TrainingQueued,
)
from app.api.schema import ApiModel, QueryModel
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.contacts.records import get_contact
from campaigns.recommender import drift, jobs, registry
from campaigns.recommender.kinds import KINDS
from campaigns.recommender.rules import CampaignRules
from campaigns.recommender.service import score_contact
from models import ModelVersion, Role


class ListQuery(QueryModel):
    limit: int = Field(100, ge=1, le=500)


class TrainIn(ApiModel):
    kind: str = Field("blend", description=f"one of {', '.join(KINDS)}", max_length=100)
    params: dict[str, Any] = Field(
        default_factory=dict, description='estimator parameters, e.g. {"discovery__l2": 300}'
    )
    window_days: int | None = Field(None, ge=1, le=36_500, description="train on the last N days only")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
        return kind


class PromoteIn(ApiModel):
    role: Literal["champion", "challenger", ""] = "champion"


class RecommendQuery(QueryModel):
    limit: int = Field(6, ge=1, le=50)
    category: list[str] = Field(default_factory=list, description="only this category (repeatable)")
    min_price: float | None = Field(None, ge=0, description="lowest price")
    max_price: float | None = Field(None, ge=0, description="highest price")
    max_per_category: int | None = Field(None, ge=1, le=1000, description="at most N per category")


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
    query=ListQuery,
    response=ModelVersionList,
    tag="models",
)
def models_list(query: ListQuery) -> Response:
    session = db()
    versions = registry.versions(session, limit=query.limit)
    return jsonify(versions=[version_json(v, registry.pinned_by(session, v.id)) for v in versions])


@route(
    "/models/<int:version_id>",
    "GET",
    role=Role.viewer,
    summary="One model version",
    response=ModelVersionOut,
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
    body=TrainIn,
    tag="models",
    status=202,
    response=TrainingQueued,
)
def models_train(body: TrainIn) -> tuple[Response, int]:
    job_id = jobs.enqueue_training(get_runtime(), body.kind, body.params, actor(), body.window_days)
    return jsonify(job_id=job_id, kind=body.kind), 202


@route(
    "/models/<int:version_id>/promote",
    "POST",
    role=Role.approver,
    summary="Give a ready version a role (champion by default); rollouts that pinned a version keep it",
    body=PromoteIn,
    response=ModelVersionOut,
    tag="models",
)
def models_promote(version_id: int, body: PromoteIn) -> Response:
    session = db()
    version = registry.promote(session, version_id, body.role)
    session.commit()
    return jsonify(version_json(version, registry.pinned_by(session, version_id)))


@route(
    "/models/<int:version_id>/drift",
    "GET",
    role=Role.viewer,
    summary="The version's last drift report (country mix and price PSI, unknown contacts and items)",
    tag="models",
    response=DriftOut,
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
    response=DriftOut,
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
    query=RecommendQuery,
    tag="models",
    response=RecommendationPreview,
)
def models_recommend(version_id: int, contact_id: int, query: RecommendQuery) -> Response:
    session = db()
    get_contact(session, contact_id)
    raw = query.model_dump(exclude={"limit"}, exclude_none=True)
    raw["categories"] = raw.pop("category") or None
    rules = CampaignRules.from_mapping({k: v for k, v in raw.items() if v is not None})
    recs = score_contact(session, version_id, contact_id, query.limit, rules)
    return jsonify(
        version_id=version_id,
        contact_id=contact_id,
        recommendations=[{**rec.__dict__} for rec in recs],
    )
