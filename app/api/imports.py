"""CSV imports over the API: upload (multipart `file` or the raw CSV as the body), then poll the run.

Small uploads (up to 2 MB) are imported during the request and answer 201 with the finished run;
larger ones are queued as an rq job and answer 202 with the queued run. `?mode=sync|async`
overrides the choice.
"""

from __future__ import annotations

from typing import IO, Any, Literal

import sqlalchemy as sa
from flask import Response, jsonify, request
from pydantic import Field, field_validator

from app.api.responses_people import ImportRunDetail, ImportRunList
from app.api.schema import QueryModel
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.errors import InputError
from campaigns.imports import runs as imports
from models import ImportRun, Role

ENCODINGS = ("utf-8", "latin-1", "cp1252", "utf-16")


class UploadQuery(QueryModel):
    mode: Literal["auto", "sync", "async"] = Field("auto", description="auto: inline up to 2 MB, else queued")
    encoding: Literal[ENCODINGS] = Field(  # type: ignore[valid-type]
        "utf-8", description="the file's encoding (utf-16 needs its byte order mark)"
    )
    filename: str = Field(
        "upload.csv", min_length=1, max_length=255, description="a name for the run (raw-body uploads)"
    )

    @field_validator("encoding", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class RunsQuery(QueryModel):
    kind: Literal["contacts", "items", "interactions", "suppressions"] | None = None
    limit: int = Field(50, ge=1, le=200)


def run_json(run: ImportRun, with_errors: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "kind": run.kind,
        "filename": run.filename,
        "status": run.status,
        "rows_total": run.rows_total,
        "rows_imported": run.rows_imported,
        "rows_failed": run.rows_failed,
        "rows_skipped": run.rows_skipped,
        "errors_shown": len(run.errors or []),
        "created_by": run.created_by,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if with_errors:
        body["errors"] = run.errors or []
    return body


def _upload(query: UploadQuery) -> tuple[IO[bytes], str]:
    """The multipart part named `file`, or else the raw body (any other content type)."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise InputError("the multipart upload has no part named 'file'", where="file")
        return upload.stream, upload.filename or "upload.csv"
    return request.stream, query.filename


def start_upload(kind: str, query: UploadQuery) -> tuple[Response, int]:
    """Store the upload as a run of `kind`, then import it inline or queue it."""
    mode, encoding = query.mode, query.encoding
    stream, filename = _upload(query)
    rt = get_runtime()
    run, path, size = imports.save_upload(db(), rt.settings.instance_path, kind, filename, stream, actor())
    db().commit()
    if mode == "sync" or (mode == "auto" and size <= imports.INLINE_MAX_BYTES):
        try:
            run = imports.import_file(rt.session_factory, run.id, path, kind, encoding)
        finally:
            path.unlink(missing_ok=True)
        return jsonify(run_json(run)), 201
    imports.enqueue_import(rt, run.id, path, kind, encoding)
    return jsonify(run_json(run)), 202


def upload_route(rule: str, kind: str, summary: str, columns: str) -> None:
    def view(query: UploadQuery) -> tuple[Response, int]:
        return start_upload(kind, query)

    view.__name__ = f"import_{kind}"
    route(
        rule,
        "POST",
        role=Role.marketer,
        summary=summary,
        query=UploadQuery,
        response=ImportRunDetail,
        tag="imports",
        status=(201, 202),  # 201: imported during the request; 202: queued (a larger file)
    )(view)
    # the request body is a CSV file, not JSON: describe it as such
    from app.api.spec import OPERATIONS, openapi_path

    OPERATIONS[openapi_path(rule)]["post"]["requestBody"] = {
        "required": True,
        "description": columns,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }


upload_route(
    "/contacts/import",
    "contacts",
    "Import contacts from CSV (upsert on email)",
    "Columns: email (required), name, country, timezone, consent, status, external_id; others become attributes.",
)
upload_route(
    "/suppressions/import",
    "suppressions",
    "Import addresses to the suppression list",
    "Columns: email (required), reason.",
)
upload_route(
    "/items/import",
    "items",
    "Import catalog items (upsert on sku)",
    "Columns: sku or id (required), name, url, price, image, category, enabled.",
)
upload_route(
    "/interactions/import",
    "interactions",
    "Import purchase history (Online Retail shape or plain)",
    "Online Retail: InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country. "
    "Plain: email or customer_id, sku, occurred_at, quantity, unit_price or value, kind, reference.",
)


@route(
    "/imports",
    "GET",
    role=Role.viewer,
    summary="Recent import runs (without their error lists)",
    query=RunsQuery,
    tag="imports",
    response=ImportRunList,
)
def imports_list(query: RunsQuery) -> Response:
    select = sa.select(ImportRun).order_by(ImportRun.id.desc())
    if query.kind:
        select = select.where(ImportRun.kind == query.kind)
    runs = db().scalars(select.limit(query.limit))
    return jsonify(imports=[run_json(r, with_errors=False) for r in runs])


@route(
    "/imports/<int:run_id>",
    "GET",
    role=Role.viewer,
    summary="An import's progress and its per-row error report",
    response=ImportRunDetail,
    tag="imports",
)
def imports_get(run_id: int) -> Response:
    return jsonify(run_json(imports.get_run(db(), run_id)))
