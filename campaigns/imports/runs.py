"""Import runs for every kind of CSV: accept an upload, run it inline or as an rq job, report.

An upload is spooled to a local file under `instance/imports/` while its request lasts. A small one
is imported there and then; a large one is moved to the blob store every host reads (the database by
default, see `campaigns.blobstore`) before its job is queued, so any worker on any machine runs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from campaigns import blobstore, runtime
from campaigns.errors import InputError, NotFound
from campaigns.imports.stream import Importer, fail_run, open_binary, run_import, start_run
from campaigns.ops import queues
from models import ImportRun

INLINE_MAX_BYTES = 2 * 1024 * 1024  # smaller uploads are imported during the request
JOB_TIMEOUT = 3 * 3600


def importer_for(kind: str) -> Importer:
    from campaigns.catalog.interactions import InteractionImporter
    from campaigns.catalog.items import ItemImporter
    from campaigns.contacts.importer import ContactImporter
    from campaigns.contacts.suppression import SuppressionImporter

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
    """Run one import from a file on disk (gzip or plain), unless it is over a limit (README): then
    the run fails at once with the reason, importing nothing."""
    importer = importer_for(kind)
    settings = runtime.current_settings()
    size, lines = measure(path, settings.import_max_bytes, settings.import_max_rows + 1)
    if size > settings.import_max_bytes:
        limit = settings.import_max_bytes
        return fail_run(
            session_factory, run_id, "file", f"the file is over {limit:,} bytes (uncompressed); split it"
        )
    expected = max(lines - 1, 0)
    if expected > settings.import_max_rows:
        limit = settings.import_max_rows
        return fail_run(session_factory, run_id, "file", f"the file has over {limit:,} rows; split it")
    with open_binary(path) as stream:
        return run_import(
            session_factory, run_id, stream, importer, encoding=encoding, rows_expected=expected
        )


def measure(path: str | Path, max_bytes: int, max_lines: int) -> tuple[int, int]:
    """(uncompressed bytes, lines) read from the file, stopping once past either limit: a small gzip
    that expands to millions of rows is measured only up to the limit."""
    size = lines = 0
    last = b"\n"
    with open_binary(path) as stream:
        while size <= max_bytes and lines <= max_lines and (block := stream.read(1 << 20)):
            size += len(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return size, lines + (0 if last == b"\n" else 1)


def upload_key(run_id: int) -> str:
    return f"imports/{run_id}.csv"


def import_job(run_id: int, key: str, kind: str, encoding: str = "utf-8") -> dict[str, int | str]:
    """rq job: fetch the upload from the shared store (digest checked), import it, then delete it."""
    rt = runtime.current()
    store = rt.blobs()
    local = blobstore.spool(store, key)
    try:
        run = import_file(rt.session_factory, run_id, local, kind, encoding)
    finally:
        local.unlink(missing_ok=True)
    store.delete(key)
    return {"status": run.status, "imported": run.rows_imported, "failed": run.rows_failed}


def enqueue_import(rt: runtime.Runtime, run_id: int, path: Path, kind: str, encoding: str = "utf-8") -> str:
    """Move the spooled upload into the shared store and queue its import for any worker."""
    key = upload_key(run_id)
    blobstore.put_file(rt.blobs(), key, path)
    path.unlink(missing_ok=True)
    queue = queues.queue(rt, queues.IMPORTS)
    job = queue.enqueue(
        import_job,
        run_id,
        key,
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
