"""Streaming CSV imports: read a file row by row, hand rows to an importer in chunks, commit each
chunk with the run's progress, and keep a per-row error report.

Memory stays flat whatever the file size: rows are parsed as they are read, a chunk of a few
thousand is written and committed, and duplicate detection keeps 12 bytes per distinct key.
Row numbers are the file's line numbers (the header is line 1), as an editor or spreadsheet shows.
A row that is not valid UTF-8 is reported with the field that holds the bad bytes; the rows
around it are imported.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.errors import InputError
from models import ImportRun, utcnow

MAX_ERRORS = 1000
CHUNK_ROWS = 2000
MAX_FIELD = 1 << 20
ANALYZE_AFTER_ROWS = 10_000
_NOT_WORD = re.compile(r"[^0-9a-z]+")

csv.field_size_limit(MAX_FIELD)


class Row:
    """A row of the file: the line where it starts (the header is line 1) and its cells in header
    order; `values` maps the columns to them (made on first use: the contact import reads cells)."""

    __slots__ = ("_values", "cells", "columns", "number")

    def __init__(self, number: int, cells: list[str], columns: list[str]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns
        self._values: dict[str, str] | None = None

    @property
    def values(self) -> dict[str, str]:
        if self._values is None:
            self._values = dict(zip(self.columns, self.cells, strict=True))
        return self._values


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
        """Write the good rows, report the bad ones; do not commit."""


def normalize_header(name: str) -> str:
    """ "E-mail Address " -> "e_mail_address": what attribute keys and column lookups use."""
    return _NOT_WORD.sub("_", name.strip().lower()).strip("_")


def open_binary(path: str | Path) -> IO[bytes]:
    """A file, transparently gunzipped when it starts with the gzip magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def count_lines(path: str | Path) -> int:
    """Lines in the file (gunzipped): a quick upper bound of the rows, for progress bars."""
    lines = 0
    last = b"\n"
    with open_binary(path) as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if last == b"\n" else 1)


class CsvRows:
    """Rows of a CSV stream as dicts keyed by normalized, aliased header names."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        aliases: Mapping[str, str] | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
    ) -> None:
        self.encoding = encoding
        self._text = io.TextIOWrapper(
            stream, encoding=_bom_aware(encoding), errors="surrogateescape", newline=""
        )
        try:
            first = self._text.readline()
        except UnicodeError as exc:  # utf-16 without a byte order mark, odd bytes...
            raise InputError(f"the file is not valid {encoding}: {exc}", where="header") from exc
        if not first.strip():
            raise InputError("the file is empty (no header line)", where="header")
        self.delimiter = delimiter or _sniff(first)
        header_line = next(csv.reader([first], delimiter=self.delimiter))
        if _bad_bytes(header_line):
            raise InputError(
                "the header line is not valid UTF-8; save the file as UTF-8 or name its encoding",
                where="header",
            )
        if any("\x00" in c for c in header_line):
            raise InputError("the header line holds a NUL byte: is the encoding right?", where="header")
        aliases = aliases or {}
        self.raw_columns = [c.strip() for c in header_line]
        self.columns: list[str] = []
        for i, raw in enumerate(self.raw_columns):
            name = normalize_header(raw) or f"column_{i + 1}"
            name = aliases.get(name, name)
            if name in self.columns:
                raise InputError(f"column {raw!r} appears twice in the header", where="header")
            self.columns.append(name)
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        self._line = 1

    def __iter__(self) -> Iterator[Row | RowProblem]:
        width = len(self.columns)
        while True:
            start = self._line + 1
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self._line = self._reader.line_num + 1
                yield RowProblem(start, "", f"unreadable CSV row: {exc}")
                continue
            except UnicodeError as exc:  # the decoder cannot go on: the rest of the file is lost
                yield RowProblem(start, "", f"the file is not valid {self.encoding} from here on: {exc}")
                return
            self._line = self._reader.line_num + 1
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            joined = "\x1f".join(values)  # one look at the whole row for the rare bad cell
            bad = None if joined.isascii() else _bad_bytes(values)
            if bad is not None:
                name = self.columns[bad] if bad < width else f"column {bad + 1}"
                yield RowProblem(start, name, _encoding_message(values[bad]))
                continue
            if "\x00" in joined:
                nul = next(i for i, v in enumerate(values) if "\x00" in v)
                name = self.columns[nul] if nul < width else f"column {nul + 1}"
                yield RowProblem(start, name, "holds a NUL byte, which cannot be stored")
                continue
            if len(values) != width:
                if len(values) < width:
                    missing = ", ".join(self.columns[len(values) :])
                    message = f"the row has {len(values)} values, the header has {width} columns (missing: {missing})"
                    yield RowProblem(start, self.columns[len(values)], message)
                else:
                    message = f"the row has {len(values)} values, the header has {width} columns"
                    yield RowProblem(start, "", message)
                continue
            yield Row(start, values, self.columns)


@dataclass(frozen=True)
class RowProblem:
    """A row the reader itself could not turn into values."""

    number: int
    field: str
    message: str


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
        if chunk_rows is None:  # an importer that writes with COPY on PostgreSQL takes larger chunks
            on_postgresql = session.get_bind().dialect.name == "postgresql"
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
    collecting = gc.isenabled()
    gc.disable()  # rows make no reference cycles; the collector's passes over them cost ~15%
    try:
        for chunk in _chunks(rows, chunk_rows or CHUNK_ROWS):
            report.rows_total += len(chunk)
            good: list[Row] = []
            for row in chunk:
                if isinstance(row, RowProblem):
                    report.error(row.number, row.field, row.message)
                else:
                    good.append(row)
            with session_factory() as session:
                importer.import_chunk(session, good, report)
                report.end_chunk()
                run = _load_run(session, run_id)
                report.save(run)
                session.commit()
    except Exception as exc:
        report.error(0, "", f"the import stopped: {type(exc).__name__}: {exc}")
        _finish(session_factory, run_id, report, "failed")
        raise
    finally:
        if collecting:
            gc.enable()
    if report.rows_imported >= ANALYZE_AFTER_ROWS:
        with session_factory() as session:
            analyze(session, importer.tables)
            session.commit()
    return _finish(session_factory, run_id, report, "done")


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


def _bom_aware(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _bad_bytes(values: Sequence[str]) -> int | None:
    """Index of the first value holding undecodable bytes (surrogate escapes), if any."""
    try:
        "\x1f".join(values).encode("utf-8")
    except UnicodeEncodeError:
        for i, value in enumerate(values):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return i
    return None


def _encoding_message(value: str) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        return f"not valid UTF-8 (byte 0x{byte:02x} at position {exc.start + 1}); save the file as UTF-8"
    return "not valid UTF-8"


class SeenKeys:
    """Which keys (emails, SKUs) a file already had, and on which row: 12 bytes per key.

    Keys are 64-bit hashes (Python's string hash: SipHash, keyed per process, which is all a file's
    import needs); recent ones sit in a dict, older ones in sorted numpy arrays. A false "duplicate"
    needs a 64-bit collision: about 3e-8 for a 1,000,000-row file.
    """

    def __init__(self, merge_every: int = 100_000) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        self._merge_every = merge_every

    def first_row(self, key: str, row: int) -> int | None:
        """The row where `key` was first seen, or None (and remember it as seen on `row`)."""
        digest = hash(key)
        earlier = self._recent.get(digest)
        if earlier is not None:
            return earlier
        if self._keys.size:
            i = int(np.searchsorted(self._keys, digest))
            if i < self._keys.size and int(self._keys[i]) == digest:
                return int(self._rows[i])
        self._recent[digest] = row
        if len(self._recent) >= self._merge_every:
            self._merge()
        return None

    def first_rows(self, keys: Sequence[str], rows: Sequence[int]) -> list[int | None]:
        """`first_row` of each key in turn (the older keys are searched once for the lot)."""
        digests = [hash(key) for key in keys]
        older: list[int] = [-1] * len(digests)  # row in the older keys, -1: not there
        if self._keys.size and digests:
            wanted = np.array(digests, dtype=np.int64)
            at = np.minimum(np.searchsorted(self._keys, wanted), self._keys.size - 1)
            older = np.where(self._keys[at] == wanted, self._rows[at], -1).tolist()
        recent = self._recent
        found: list[int | None] = []
        for digest, row, old in zip(digests, rows, older, strict=True):
            earlier = old if old >= 0 else recent.get(digest)
            if earlier is None:
                recent[digest] = row
            found.append(earlier)
        if len(recent) >= self._merge_every:
            self._merge()
        return found

    def _merge(self) -> None:
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), dtype=np.int64)])
        rows = np.concatenate([self._rows, np.fromiter(self._recent.values(), dtype=np.int64)])
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows = keys[order], rows[order]
        self._recent.clear()


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
