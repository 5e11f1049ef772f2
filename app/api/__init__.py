"""The JSON API under /api/v1: token auth, one module per area, every route in the OpenAPI document."""

from __future__ import annotations

from flask import Response, jsonify

from app.api import (  # noqa: F401  (register their routes)
    audit,
    bounces,
    campaigns,
    catalog,
    contacts,
    decisions,
    errors,
    event_export,
    events,
    imports,
    local_time,
    models_api,
    privacy,
    rollout_segments,
    rollouts,
    seeds,
    segments,
    templates,
    users,
)
from app.api.spec import api, document, route


@route("/openapi.json", "GET", role=None, summary="This document", tag="meta")
def openapi() -> Response:
    return jsonify(document("1"))


__all__ = ["api"]
