"""Raw events for warehouses: `GET /api/v1/events/export?format=ndjson|parquet&since=&until=&after=`."""

from __future__ import annotations

from flask import Response, request, stream_with_context

from app.api.spec import route
from app.extensions import get_runtime
from campaigns import event_export
from models import Role

EXPORT_QUERY = {
    "format": "ndjson (default) or parquet",
    "since": "ISO 8601: events that occurred at or after this time",
    "until": "ISO 8601: events that occurred before this time",
    "after": "the cursor: export events whose id is greater (resume with the last id you received)",
    "kind": "comma-separated event kinds (delivered, open, click, conversion, unsubscribe, ...)",
    "limit": "at most this many events; continue with after=<the last id>",
}
MIMETYPES = {"ndjson": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


@route(
    "/events/export",
    "GET",
    role=Role.viewer,
    content="application/x-ndjson",
    query=EXPORT_QUERY,
    summary="Raw events by time range, streamed as NDJSON or Parquet, resumable by id",
    tag="events",
)
def events_export() -> Response:
    args = {k: str(v) for k, v in request.args.items()}
    fmt = args.get("format") or "ndjson"
    rng = event_export.parse_range(args)
    chunks = event_export.stream(get_runtime().session_factory, rng, fmt)  # checks the format first
    response = Response(stream_with_context(chunks), mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="events-after-{rng.after}.{fmt}"'
    return response
