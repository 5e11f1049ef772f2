"""The JSON API under /api/v1: token auth, one module per area, every route in the OpenAPI document."""

from __future__ import annotations

from flask import Response, jsonify

from app.api import (  # noqa: F401  (register their routes)
    approvals,
    audit,
    bounces,
    campaigns,
    catalog,
    contacts,
    decisions,
    errors,
    event_export,
    events,
    flow_reports,
    flows,
    imports,
    local_time,
    models_api,
    privacy,
    rollout_segments,
    rollouts,
    seeds,
    segments,
    sending_rules,
    templates,
    users,
)
from app.api.spec import api, document, route

OPENAPI_DOCUMENT = {
    "type": "object",
    "description": "an OpenAPI 3.1 document",
    "properties": {
        "openapi": {"type": "string"},
        "info": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
        },
        "servers": {"type": "array", "items": {"type": "object"}},
        "components": {"type": "object"},
        "paths": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "required": ["openapi", "info", "paths"],
}


@route("/openapi.json", "GET", role=None, summary="This document", tag="meta", response=OPENAPI_DOCUMENT)
def openapi() -> Response:
    return jsonify(document("1"))


__all__ = ["api"]
