"""Raw events for warehouses and analytics tools: NDJSON or Parquet, streamed, by time range, resumable.

Rows are read in keyset pages (`id > cursor ORDER BY id LIMIT page`), each page its own short query,
so memory stays at one page whatever the range. The cursor is the last exported event id: an export
that stopped (a dropped connection, a `limit`) resumes with `after=<that id>` and gets exactly the
rows that follow. Ids grow with storage order; events stored while an export runs may land after its
cursor, which the next incremental run picks up. The IP address and user agent are not exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.errors import InputError
from models import Event

FORMATS = ("ndjson", "parquet")
PAGE_ROWS = 5000
COLUMNS: tuple[tuple[str, str], ...] = (  # name, arrow type
    ("id", "int64"),
    ("kind", "string"),
    ("occurred_at", "timestamp"),
    ("stored_at", "timestamp"),
    ("campaign_id", "int64"),
    ("contact_id", "int64"),
    ("send_id", "int64"),
    ("rollout_id", "int64"),
    ("arm", "string"),
    ("stage_index", "int64"),
    ("link_id", "int64"),
    ("item_id", "int64"),
    ("value", "float64"),
    ("machine", "bool"),
    ("reason", "string"),
)


@dataclass
class Progress:
    """Where an export has got to: the cursor to resume from, and the rows written so far."""

    last_id: int = 0
    rows: int = 0


@dataclass(frozen=True)
class ExportRange:
    since: datetime | None = None  # occurred_at >= since
    until: datetime | None = None  # occurred_at < until
    after: int = 0  # the cursor: export ids greater than this
    kinds: tuple[str, ...] = ()
    limit: int | None = None  # at most this many rows (then resume from the last id)


def parse_range(args: dict[str, str]) -> ExportRange:
    """Query parameters or CLI options in, a checked range out (errors name the parameter)."""
    since, until = _time(args.get("since"), "since"), _time(args.get("until"), "until")
    if since and until and until <= since:
        raise InputError("until must be after since", where="until")
    after = _int(args.get("after"), "after", 0) or 0
    limit = _int(args.get("limit"), "limit", None)
    if limit is not None and limit <= 0:
        raise InputError("limit must be a positive number of rows", where="limit")
    kinds = tuple(k for k in (args.get("kind") or "").split(",") if k)
    return ExportRange(since, until, after, kinds, limit)


def pages(
    factory: sessionmaker[Session],
    rng: ExportRange,
    progress: Progress | None = None,
    page_rows: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The range's rows in id order, one page at a time."""
    cursor, left = rng.after, rng.limit
    page_rows = page_rows or PAGE_ROWS
    progress = progress or Progress()
    progress.last_id = cursor
    columns = [getattr(Event, name) for name, _ in COLUMNS]
    while left is None or left > 0:
        size = page_rows if left is None else min(page_rows, left)
        query = sa.select(*columns).where(Event.id > cursor).order_by(Event.id).limit(size)
        if rng.since is not None:
            query = query.where(Event.occurred_at >= rng.since)
        if rng.until is not None:
            query = query.where(Event.occurred_at < rng.until)
        if rng.kinds:
            query = query.where(Event.kind.in_(rng.kinds))
        with factory() as session:
            rows = [dict(row._mapping) for row in session.execute(query)]
        if not rows:
            return
        yield rows
        cursor = int(rows[-1]["id"])
        progress.last_id, progress.rows = cursor, progress.rows + len(rows)
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return


def ndjson(
    factory: sessionmaker[Session], rng: ExportRange, progress: Progress | None = None
) -> Iterator[bytes]:
    for page in pages(factory, rng, progress):
        yield "".join(json.dumps(_jsonable(row), separators=(",", ":")) + "\n" for row in page).encode()


def parquet(
    factory: sessionmaker[Session], rng: ExportRange, progress: Progress | None = None
) -> Iterator[bytes]:
    """One Parquet file, a row group per page, handed out as it is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, _arrow_type(pa, kind)) for name, kind in COLUMNS])
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for page in pages(factory, rng, progress):
            columns = {name: [row[name] for row in page] for name, _ in COLUMNS}
            writer.write_table(pa.table(columns, schema=schema))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def stream(
    factory: sessionmaker[Session], rng: ExportRange, fmt: str, progress: Progress | None = None
) -> Iterator[bytes]:
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}", where="format")
    return ndjson(factory, rng, progress) if fmt == "ndjson" else parquet(factory, rng, progress)


class _Chunks:
    """A write-only file for pyarrow that hands written bytes out instead of keeping them."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        block = bytes(data)
        self._parts.append(block)
        self._pos += len(block)
        return len(block)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        block, self._parts = b"".join(self._parts), []
        return block


def _arrow_type(pa: Any, kind: str) -> Any:
    return {
        "int64": pa.int64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float64": pa.float64(),
        "bool": pa.bool_(),
    }[kind]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _time(value: str | None, where: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{value!r} is not an ISO 8601 date or time", where=where) from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _int(value: str | None, where: str, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise InputError(f"{value!r} is not a whole number", where=where) from None
