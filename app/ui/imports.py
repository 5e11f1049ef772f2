"""CSV imports from the browser (contacts, catalog items, purchase history, suppressions): upload,
run inline when small or on a worker when large, then a page with progress and the per-row errors."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, jsonify, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.errors import InputError
from campaigns.imports import runs as imports
from models import ImportRun, Role

KINDS = {
    "contacts": "Contacts",
    "items": "Catalog items",
    "interactions": "Purchase history",
    "suppressions": "Suppression list",
}
ENCODINGS = ("utf-8", "latin-1", "cp1252")
BACK = {
    "contacts": "ui.contacts",
    "items": "ui.catalog",
    "interactions": "ui.catalog",
    "suppressions": "ui.contacts",
}


def recent_runs(kinds: tuple[str, ...], limit: int = 5) -> list[ImportRun]:
    query = sa.select(ImportRun).where(ImportRun.kind.in_(kinds)).order_by(ImportRun.id.desc()).limit(limit)
    return list(db().scalars(query))


def _start(kind: str) -> ImportRun:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InputError("choose a CSV file to import", where="file")
    encoding = request.form.get("encoding", "utf-8")
    if encoding not in ENCODINGS:
        raise InputError(f"unknown encoding {encoding!r}", where="encoding")
    rt = get_runtime()
    run, path, size = imports.save_upload(
        db(), rt.settings.instance_path, kind, upload.filename, upload.stream, actor()
    )
    db().commit()
    if size <= imports.INLINE_MAX_BYTES:
        imports.import_file(rt.session_factory, run.id, path, kind, encoding)
        path.unlink(missing_ok=True)
    else:
        imports.enqueue_import(rt, run.id, path, kind, encoding)
    return run


@ui.route("/imports/<kind>", methods=["POST"])
@require_role(Role.marketer)
def imports_start(kind: str) -> Response:
    if kind not in KINDS:
        abort(404)
    return perform(
        lambda: _start(kind),
        success=lambda run: f"Import of {run.filename} started.",
        back=lambda run: url_for("ui.imports_detail", run_id=run.id),
        failed=url_for(BACK[kind]),
    )


def _progress(run: ImportRun) -> dict[str, Any]:
    done = run.rows_imported + run.rows_failed + run.rows_skipped
    finished = run.status in ("done", "failed")
    text = (
        f"{run.status}: {done:,} of {max(run.rows_total, done):,} rows read, {run.rows_imported:,} imported, "
        f"{run.rows_failed:,} with errors"
    )
    return {"done": done, "total": max(run.rows_total, done), "text": text, "finished": finished}


@ui.route("/imports/<int:run_id>")
@require_role(Role.viewer)
def imports_detail(run_id: int) -> str:
    run = db().get(ImportRun, run_id) or abort(404)
    back = BACK.get(run.kind, "ui.contacts")
    return render_template(
        "ui/import_run.html",
        run=run,
        progress=_progress(run),
        kind_label=KINDS.get(run.kind, run.kind),
        back=back,
    )


@ui.route("/imports/<int:run_id>/progress")
@require_role(Role.viewer)
def imports_progress(run_id: int) -> Response:
    run = db().get(ImportRun, run_id) or abort(404)
    return jsonify(_progress(run))
