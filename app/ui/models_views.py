"""The model registry: every recommender version with its lineage, offline metrics and drift, the
rollouts that pinned it; training a new version (on a worker) and promoting one to champion."""

from __future__ import annotations

from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.errors import InputError
from campaigns.recommender import registry
from campaigns.recommender.jobs import enqueue_drift, enqueue_training
from campaigns.recommender.kinds import KINDS
from models import Role


@ui.route("/models")
@require_role(Role.viewer)
def models() -> str:
    versions = registry.versions(db())
    pinned = {v.id: registry.pinned_by(db(), v.id) for v in versions}
    return render_template("ui/models.html", versions=versions, pinned=pinned, kinds=list(KINDS))


@ui.route("/models/train", methods=["POST"])
@require_role(Role.approver)
def models_train() -> Response:
    def enqueue() -> str:
        kind = request.form.get("kind", "blend")
        if kind not in KINDS:
            raise InputError(f"unknown model kind {kind!r}", where="kind")
        raw = request.form.get("window_days", "").strip()
        window = int(raw) if raw.isdigit() and int(raw) > 0 else None
        return enqueue_training(get_runtime(), kind, None, actor(), window)

    return perform(
        enqueue,
        success="Training started on a worker; the version appears here as training, then ready.",
        back=url_for("ui.models"),
    )


@ui.route("/models/<int:version_id>/promote", methods=["POST"])
@require_role(Role.approver)
def models_promote(version_id: int) -> Response:
    role = request.form.get("role", "champion")
    return perform(
        lambda: registry.promote(db(), version_id, role),
        success=lambda v: (
            f"Version {v.id} is now {v.role or 'without a role'}. Rollouts that pinned a version keep it."
        ),
        back=url_for("ui.models"),
    )


@ui.route("/models/<int:version_id>/drift", methods=["POST"])
@require_role(Role.marketer)
def models_drift(version_id: int) -> Response:
    def measure() -> str:
        registry.get(db(), version_id)
        return enqueue_drift(get_runtime(), version_id)

    return perform(
        measure,
        success="Measuring drift on a worker; reload in a moment.",
        back=url_for("ui.models"),
    )
