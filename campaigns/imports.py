"""Import runs for every kind of CSV: accept an upload, run it inline or as an rq job, report.

The uploaded file is kept under `instance/imports/` until its run ends, so a worker can stream it;
with several worker machines, `instance/` must be a shared volume (the file is not held in Redis).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from campaigns import queues, runtime
from campaigns.csv_import import Importer, count_lines, open_binary, run_import, start_run
from campaigns.errors import InputError, NotFound
from models import ImportRun

INLINE_MAX_BYTES = 2 * 1024 * 1024  # smaller uploads are imported during the request
JOB_TIMEOUT = 3 * 3600


def importer_for(kind: str) -> Importer:
    from campaigns.catalog import ItemImporter
    from campaigns.contact_import import ContactImporter
    from campaigns.interactions import InteractionImporter
    from campaigns.suppression import SuppressionImporter

    makers: dict[str, Callable[[], Importer]] = {
        "contacts": ContactImporter,
        "items": ItemImporter,
        "interactions": InteractionImporter,
        "suppressions": SuppressionImporter,
    }
    if kind not in makers:
        raise InputError(f"unknown import kind {kind!r}; use one of {', '.join(makers)}", where="kind")
    return makers[kind]()


def upload_dir(instance_path: Path) -> Path:
    path = instance_path / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(
    session: Session, instance_path: Path, kind: str, filename: str, stream: IO[bytes], created_by: str
) -> tuple[ImportRun, Path, int]:
    """Create a queued ImportRun and store the upload beside it; returns (run, path, size in bytes)."""
    importer_for(kind)  # fails early on an unknown kind
    run = start_run(session, kind, filename or "upload.csv", created_by)
    path = upload_dir(instance_path) / f"{run.id}.csv"
    with open(path, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    size = path.stat().st_size
    if size == 0:
        path.unlink()
        raise InputError("the upload is empty", where="file")
    return run, path, size


def import_file(
    session_factory: sessionmaker[Session], run_id: int, path: str | Path, kind: str, encoding: str = "utf-8"
) -> ImportRun:
    """Run one import from a file on disk (gzip or plain)."""
    importer = importer_for(kind)
    expected = max(count_lines(path) - 1, 0)
    with open_binary(path) as stream:
        return run_import(
            session_factory, run_id, stream, importer, encoding=encoding, rows_expected=expected
        )


def import_job(run_id: int, path: str, kind: str, encoding: str = "utf-8") -> dict[str, int | str]:
    """rq job: import an uploaded file, then delete it."""
    rt = runtime.current()
    try:
        run = import_file(rt.session_factory, run_id, path, kind, encoding)
    finally:
        Path(path).unlink(missing_ok=True)
    return {"status": run.status, "imported": run.rows_imported, "failed": run.rows_failed}


def enqueue_import(rt: runtime.Runtime, run_id: int, path: Path, kind: str, encoding: str = "utf-8") -> str:
    queue = queues.queue(rt, queues.IMPORTS)
    job = queue.enqueue(
        import_job,
        run_id,
        str(path),
        kind,
        encoding,
        job_id=f"import-{run_id}",
        job_timeout=JOB_TIMEOUT,
        result_ttl=86400,
        failure_ttl=7 * 86400,
    )
    return str(job.id)


def get_run(session: Session, run_id: int) -> ImportRun:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"import {run_id} does not exist")
    return run
