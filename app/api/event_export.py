"""Raw events for warehouses: `GET /api/v1/events/export?format=ndjson|parquet&since=&until=&after=`."""

from __future__ import annotations

from typing import Literal

from flask import Response, stream_with_context
from pydantic import Field

from app.api.schema import BIGINT_MAX, QueryModel
from app.api.spec import route
from app.extensions import get_runtime
from campaigns.events import export as event_export
from models import Role


class ExportQuery(QueryModel):
    format: Literal["ndjson", "parquet"] = "ndjson"
    since: str = Field("", max_length=40, description="ISO 8601: events that occurred at or after this time")
    until: str = Field("", max_length=40, description="ISO 8601: events that occurred before this time")
    after: int = Field(
        0,
        ge=0,
        le=BIGINT_MAX,
        description="the cursor: export events whose id is greater (resume with the last id you received)",
    )
    kind: str = Field(
        "",
        max_length=500,
        description="comma-separated event kinds (delivered, open, click, conversion, ...)",
    )
    limit: int | None = Field(
        None, ge=1, le=BIGINT_MAX, description="at most this many events; continue with after=<the last id>"
    )


MIMETYPES = {"ndjson": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


@route(
    "/events/export",
    "GET",
    role=Role.viewer,
    content="application/x-ndjson",
    query=ExportQuery,
    summary="Raw events by time range, streamed as NDJSON or Parquet, resumable by id",
    tag="events",
)
def events_export(query: ExportQuery) -> Response:
    args = {k: str(v) for k, v in query.model_dump(exclude_none=True).items() if v != ""}
    fmt = query.format
    rng = event_export.parse_range(args)
    chunks = event_export.stream(get_runtime().session_factory, rng, fmt)  # checks the format first
    response = Response(stream_with_context(chunks), mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="events-after-{rng.after}.{fmt}"'
    return response
