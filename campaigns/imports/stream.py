"""Streaming CSV imports: read a file row by row, hand rows to an importer in chunks, commit each
chunk with the run's progress, and keep a per-row error report.

Memory stays flat whatever the file size: rows are parsed as they are read, a chunk of a few
thousand is written and committed, and duplicate detection keeps 12 bytes per distinct key.
Row numbers are the file's line numbers (the header is line 1), as an editor or spreadsheet shows.
A row that is not valid UTF-8 is reported with the field that holds the bad bytes; the rows
around it are imported.
"""

from __future__ import annotations

import contextvars
import gc
import math
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.errors import InputError
from campaigns.imports.csv_rows import CsvRows, Row, RowProblem, count_lines, normalize_header, open_binary
from campaigns.imports.seen_keys import SeenKeys
from models import ImportRun, utcnow

__all__ = [
    "CsvRows",
    "ImportReport",
    "Importer",
    "Row",
    "RowProblem",
    "SeenKeys",
    "count_lines",
    "normalize_header",
    "open_binary",
    "run_import",
]

MAX_ERRORS = 1000
CHUNK_ROWS = 2000
ANALYZE_AFTER_ROWS = 10_000
WRITER_LANES = 2  # chunks PostgreSQL writes at once (see _Writer)


@dataclass
class ImportReport:
    """Counters and the capped error list of one run; written to its ImportRun with each chunk."""

    max_errors: int = MAX_ERRORS
    rows_total: int = 0
    rows_imported: int = 0
    rows_failed: int = 0
    rows_skipped: int = 0
    rows_expected: int = 0  # an estimate from the file's line count, for progress bars
    errors: list[dict[str, Any]] = field(default_factory=list)
    _failed_rows: set[int] = field(default_factory=set)

    def error(self, row: int, field_name: str, message: str) -> None:
        """A row fails once however many of its fields are wrong; each field is reported."""
        if row not in self._failed_rows:
            self._failed_rows.add(row)
            self.rows_failed += 1
        if len(self.errors) < self.max_errors:
            self.errors.append({"row": row, "field": field_name, "error": message})

    def end_chunk(self) -> None:
        self._failed_rows.clear()

    def save(self, run: ImportRun, final: bool = False) -> None:
        run.rows_total = self.rows_total if final else max(self.rows_expected, self.rows_total)
        run.rows_imported = self.rows_imported
        run.rows_failed = self.rows_failed
        run.rows_skipped = self.rows_skipped
        run.errors = sorted(self.errors, key=lambda e: int(e["row"]))


class Importer(Protocol):
    """One kind of import. Columns are normalized header names (see `normalize_header`)."""

    @property
    def kind(self) -> str: ...

    @property
    def aliases(self) -> Mapping[str, str]: ...

    @property
    def tables(self) -> Sequence[str]:
        """The tables it writes (analyzed after a big import)."""
        ...

    def check_header(self, columns: Sequence[str]) -> None:
        """Raise InputError(where="header") when a required column is missing."""

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        """Write the good rows, report the bad ones; do not commit.

        An importer may also have `prepare_chunk(rows)`: the chunk's parsing, touching neither the
        database nor the report, returning the step `(session, report) -> None` that reports and
        writes it; on PostgreSQL `run_import` then prepares a chunk while the previous one is written.
        """


def run_import(
    session_factory: sessionmaker[Session],
    run_id: int,
    stream: IO[bytes],
    importer: Importer,
    *,
    encoding: str = "utf-8",
    chunk_rows: int | None = None,
    rows_expected: int | None = None,
    max_errors: int = MAX_ERRORS,
) -> ImportRun:
    """Import every good row of `stream`, committing chunk by chunk with the run's progress.

    A header problem (a missing required column, an unreadable header) fails the run with one error
    at row 1 and imports nothing. Anything unexpected fails the run too, after the chunks already
    committed; it is re-raised so a job queue records it.
    """
    report = ImportReport(max_errors=max_errors, rows_expected=max(rows_expected or 0, 0))
    with session_factory() as session:
        on_postgresql = session.get_bind().dialect.name == "postgresql"
        if chunk_rows is None:  # an importer that writes with COPY on PostgreSQL takes larger chunks
            chunk_rows = (
                getattr(importer, "postgresql_chunk_rows", CHUNK_ROWS) if on_postgresql else CHUNK_ROWS
            )
        run = _load_run(session, run_id)
        bind_run = getattr(importer, "bind_run", None)
        if bind_run is not None:  # importers that cite the file and row (the consent history)
            bind_run(run)
        run.status = "running"
        report.save(run)
        session.commit()
    try:
        rows = CsvRows(stream, aliases=importer.aliases, encoding=encoding)
        importer.check_header(rows.columns)
    except InputError as exc:
        report.error(1, exc.where or "header", exc.message)
        return _finish(session_factory, run_id, report, "failed")
    prepare = getattr(importer, "prepare_chunk", None) if on_postgresql else None
    writer = _Writer(session_factory, run_id, report, importer, background=prepare is not None)
    collecting = gc.isenabled()
    gc.disable()  # rows make no reference cycles; the collector's passes over them cost ~15%
    try:
        for chunk in _chunks(rows, chunk_rows or CHUNK_ROWS):
            problems: list[RowProblem] = []
            good: list[Row] = []
            for row in chunk:
                if isinstance(row, RowProblem):
                    problems.append(row)
                else:
                    good.append(row)
            writer.write(len(chunk), problems, good, prepare(good) if prepare is not None else None)
        writer.wait()
    except Exception as exc:
        writer.close()  # the chunk being written is committed (or not) before the run fails
        report.error(0, "", f"the import stopped: {type(exc).__name__}: {exc}")
        _finish(session_factory, run_id, report, "failed")
        raise
    finally:
        writer.close()
        if collecting:
            gc.enable()
    if report.rows_imported >= ANALYZE_AFTER_ROWS:
        with session_factory() as session:
            analyze(session, importer.tables)
            session.commit()
    return _finish(session_factory, run_id, report, "done")


ChunkStep = Callable[[Session, ImportReport], None]


class _Writer:
    """Writes the chunks, each in a transaction of its own with the run's progress, committed in the
    file's order.

    With `background` (an importer with `prepare_chunk`, on PostgreSQL) `lanes` threads write, each
    on a connection of its own and in a copy of the caller's context (actor, simulated time), while
    the next chunk is read and prepared: the database works on `lanes` chunks at once and the parsing
    overlaps them. A chunk's statements run as soon as it is handed over, but it commits only once the
    chunk before it has committed, and never if an earlier one failed (it is rolled back); its errors
    and counts reach the report at its commit, so the progress saved with each commit is that of the
    chunks committed. The chunks' rows are disjoint (a repeated email or external id is dropped before
    it is written), so the lanes never wait for each other's rows. At most `lanes` chunks are being
    written at once.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        run_id: int,
        report: ImportReport,
        importer: Importer,
        *,
        background: bool,
        lanes: int = WRITER_LANES,
    ) -> None:
        self._factory, self._run_id, self._report, self._importer = factory, run_id, report, importer
        self._lanes = max(1, lanes)
        self._pool = (
            ThreadPoolExecutor(self._lanes, thread_name_prefix="import-writer") if background else None
        )
        self._context = contextvars.copy_context()
        self._pending: deque[Future[None]] = deque()
        self._turn = threading.Condition()
        self._handed = 0  # chunks handed to the lanes
        self._next_commit = 0  # the chunk whose turn it is to commit
        self._failed_at: float = math.inf  # the first chunk that failed: none after it commits

    def write(self, size: int, problems: list[RowProblem], rows: list[Row], step: ChunkStep | None) -> None:
        if self._pool is None:
            self._write(size, problems, rows, step, None)
            return
        while len(self._pending) >= self._lanes:
            self._pending.popleft().result()
        rows = [] if step is not None else rows  # a step holds what it writes
        seq, self._handed = self._handed, self._handed + 1
        context = self._context.copy()  # a context is entered by one thread at a time
        self._pending.append(self._pool.submit(context.run, self._write, size, problems, rows, step, seq))

    def wait(self) -> None:
        """Until every chunk handed over is committed; the first failure, if one failed, is raised here."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _write(
        self, size: int, problems: list[RowProblem], rows: list[Row], step: ChunkStep | None, seq: int | None
    ) -> None:
        chunk = ImportReport(max_errors=sys.maxsize)  # this chunk's errors and counts, until its commit
        committed = False
        try:
            for problem in problems:
                chunk.error(problem.number, problem.field, problem.message)
            with self._factory() as session:
                if step is None:
                    self._importer.import_chunk(session, rows, chunk)
                else:
                    step(session, chunk)
                if seq is not None and not self._await_turn(seq):
                    return  # an earlier chunk failed: this one is rolled back
                report = self._report
                report.rows_total += size
                for error in chunk.errors:
                    report.error(int(error["row"]), str(error["field"]), str(error["error"]))
                report.rows_imported += chunk.rows_imported
                report.rows_skipped += chunk.rows_skipped
                report.end_chunk()
                run = _load_run(session, self._run_id)
                report.save(run)
                session.commit()
                committed = True
        finally:
            if seq is not None:
                self._done(seq, committed)

    def _await_turn(self, seq: int) -> bool:
        """Wait until the chunk before `seq` has committed: True, or an earlier chunk failed: False."""
        with self._turn:
            while self._next_commit != seq and self._failed_at > seq:
                self._turn.wait()
            return self._failed_at > seq

    def _done(self, seq: int, committed: bool) -> None:
        with self._turn:
            if not committed:
                self._failed_at = min(self._failed_at, seq)
            if self._next_commit == seq:
                self._next_commit = seq + 1
            self._turn.notify_all()


def start_run(
    session: Session, kind: str, filename: str, created_by: str, status: str = "queued"
) -> ImportRun:
    run = ImportRun(kind=kind, filename=filename[:300], created_by=created_by, status=status, errors=[])
    session.add(run)
    session.flush()
    return run


def fail_run(factory: sessionmaker[Session], run_id: int, field_name: str, message: str) -> ImportRun:
    """End a run as failed before any row was read (a file over a limit), with one error at row 1."""
    report = ImportReport()
    report.error(1, field_name, message)
    return _finish(factory, run_id, report, "failed")


def _finish(factory: sessionmaker[Session], run_id: int, report: ImportReport, status: str) -> ImportRun:
    with factory() as session:
        run = _load_run(session, run_id)
        run.status = status
        report.save(run, final=True)
        run.finished_at = utcnow()
        session.commit()
        return run


def _load_run(session: Session, run_id: int) -> ImportRun:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise InputError(f"import run {run_id} does not exist", where="import")
    return run


def _chunks(rows: Iterable[Row | RowProblem], size: int) -> Iterator[list[Row | RowProblem]]:
    chunk: list[Row | RowProblem] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows (all with the same keys, every NOT NULL column given) in the session's
    transaction. PostgreSQL gets COPY: psycopg's executemany sends one INSERT per row, and
    multi-row VALUES statements spend their time in query parsing; COPY is ten times faster."""
    if not rows:
        return
    table = getattr(table, "__table__", table)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(sa.insert(table), rows)
        return
    from psycopg.types.json import Jsonb

    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    names = ", ".join(f'"{c}"' for c in columns)
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([Jsonb(row[c]) if c in json_columns else row[c] for c in columns])


def analyze(session: Session, tables: Sequence[str]) -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load: without them the segment
    queries right after a big import pick nested loops and run ten times slower."""
    if session.get_bind().dialect.name == "postgresql":
        for name in tables:
            session.execute(sa.text(f'ANALYZE "{name}"'))
