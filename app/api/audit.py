"""The audit log of everything: filtered pages as JSON, and the whole selection as CSV."""

from __future__ import annotations

from flask import Response, jsonify, stream_with_context
from pydantic import Field

from app.api.responses_people import AuditPage
from app.api.schema import BIGINT_MAX, QueryModel
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.privacy import audit_log
from models import Role


class AuditQuery(QueryModel):
    actor: str = Field(
        "", max_length=500, description="a substring of who acted (an email, a token prefix, cli:, system)"
    )
    action: str = Field(
        "", max_length=100, description="create | update | delete | erase | export | a rollout action"
    )
    object_type: str = Field(
        "",
        max_length=100,
        description="user | api_token | template | segment | campaign | contact | suppression | ...",
    )
    object_id: str = Field("", max_length=200, description="the object's id (contacts: their pseudonym)")
    contact_id: int | None = Field(
        None, ge=1, le=BIGINT_MAX, description="a contact's id (looked up by its pseudonym)"
    )
    since: str = Field("", max_length=40, description="ISO date or date-time, inclusive")
    until: str = Field("", max_length=40, description="ISO date or date-time, exclusive")
    q: str = Field("", max_length=500, description="a substring of the summary")

    def filters(self) -> dict[str, str]:
        """As the text mapping `AuditFilter.parse` reads."""
        out = self.model_dump(exclude={"contact_id", "before", "limit"})
        if self.contact_id is not None:
            out["contact_id"] = str(self.contact_id)
        return out


class AuditPageQuery(AuditQuery):
    before: int = Field(0, ge=0, le=BIGINT_MAX, description="the next_before of the previous page")
    limit: int = Field(100, ge=1, le=1000)


@route(
    "/audit",
    "GET",
    role=Role.viewer,
    summary="The audit log, newest first, filtered",
    query=AuditPageQuery,
    response=AuditPage,
    tag="audit",
)
def audit_list(query: AuditPageQuery) -> Response:
    where = audit_log.AuditFilter.parse(query.filters())
    page = audit_log.search(db(), where, before=query.before, limit=query.limit)
    return jsonify(entries=[audit_log.entry_json(e) for e in page.entries], next_before=page.next_before)


@route(
    "/audit.csv",
    "GET",
    role=Role.viewer,
    content="text/csv",
    summary="The audit log as CSV (oldest first), same filters; cells never run as formulas",
    query=AuditQuery,
    tag="audit",
)
def audit_export(query: AuditQuery) -> Response:
    where = audit_log.AuditFilter.parse(query.filters())
    lines = audit_log.export_csv(get_runtime().session_factory, where)
    response = Response(stream_with_context(lines), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response
