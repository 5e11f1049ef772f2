"""The audit log of everything: filtered pages as JSON, and the whole selection as CSV."""

from __future__ import annotations

from flask import Response, jsonify, request, stream_with_context

from app.api.contacts import int_arg
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.privacy import audit_log
from models import Role

FILTER_QUERY = {
    "actor": "a substring of who acted (an email, a token prefix, cli:, system)",
    "action": "create | update | delete | erase | export | a rollout action",
    "object_type": "user | api_token | template | segment | campaign | contact | suppression | ...",
    "object_id": "the object's id (contacts: their pseudonym)",
    "contact_id": "a contact's id (looked up by its pseudonym)",
    "since": "ISO date or date-time, inclusive",
    "until": "ISO date or date-time, exclusive",
    "q": "a substring of the summary",
}
ENTRY_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "via": {"type": "string"},
        "action": {"type": "string"},
        "object_type": {"type": "string"},
        "object_id": {"type": "string"},
        "summary": {"type": "string"},
        "before": {"type": "object"},
        "after": {"type": "object"},
    },
}


@route(
    "/audit",
    "GET",
    role=Role.viewer,
    summary="The audit log, newest first, filtered",
    query={**FILTER_QUERY, "before": "the next_before of the previous page", "limit": "1..1000, default 100"},
    response={
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": ENTRY_SCHEMA},
            "next_before": {"type": ["integer", "null"]},
        },
    },
    tag="audit",
)
def audit_list() -> Response:
    where = audit_log.AuditFilter.parse(request.args)
    page = audit_log.search(db(), where, before=int_arg("before", 0), limit=int_arg("limit", 100))
    return jsonify(entries=[audit_log.entry_json(e) for e in page.entries], next_before=page.next_before)


@route(
    "/audit.csv",
    "GET",
    role=Role.viewer,
    content="text/csv",
    summary="The audit log as CSV (oldest first), same filters; cells never run as formulas",
    query=FILTER_QUERY,
    tag="audit",
)
def audit_export() -> Response:
    where = audit_log.AuditFilter.parse(request.args)
    lines = audit_log.export_csv(get_runtime().session_factory, where)
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
