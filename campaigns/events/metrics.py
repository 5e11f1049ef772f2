"""Per-arm aggregates kept incrementally, so an evaluation reads a few rows instead of every event.

One `ArmMetric` row per (campaign, stage, arm, segment, metric, cohort) holds ``count``, ``total``
and ``total_sq``. The cohort is the hour its recipients were sent in (`cohort_of`); an event counts in
its recipient's cohort, so the sums over recipients matured for a metric (sent at least its
maturation window ago) are one range over cohorts. Metrics (``METRICS``):

Sends marked `forced` (treatment by allow-list or beta group) count under the arm ``forced``.

- from the send path (`record_sends`): ``sent``, ``failed`` (count), ``render_ms`` (count, sum, sum of
  squares) and a fixed histogram ``render_ms_le_<edge>`` (count) from which the p95 is read;
- from ingest (`record_events`): per recipient, the first time only: ``open`` (human), ``click``
  (human), ``conversion``, ``unsubscribe``, ``complaint``, ``bounce``; per event: ``delivered``,
  ``open_machine``, ``click_bot``; and ``revenue``: count = conversion events with a value, total =
  sum of values, total_sq = sum over recipients of (revenue per recipient)^2, kept exact as revenue
  grows: when a recipient's revenue goes t -> t+v, total_sq grows by (t+v)^2 - t^2.

For a per-recipient binary outcome, count = total = total_sq = recipients with the outcome, and the
denominator is ``sent`` of the same arm and stage.

Concurrency: the per-recipient columns of `Send` are set with ``UPDATE ... WHERE col IS NULL RETURNING``,
so when two ingest workers race on the same recipient only one of them sees the row come back and
counts it; revenue is added with ``revenue = revenue + v RETURNING revenue``, atomic per row; the
aggregates are upserted with ``count = count + excluded.count``. Rows are touched in sorted order so
two workers take their locks in the same order. One batch of events costs one UPDATE per outcome kind
present (per 500 recipients) and one upsert.
"""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import ArmMetric, Event, Send, utcnow

NO_STAGE = -1
FORCED = "forced"  # treatment by allow-list or beta group: not randomized, never compared
WHOLE_ARM = ""
_WHOLE_ONLY = (WHOLE_ARM,)
CHUNK = 500

# Render latency histogram: the bucket "le_<edge>" counts renders that took at most <edge> ms.
RENDER_EDGES_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
    10000, float("inf"),
)  # fmt: skip


def render_bucket_metric(edge: float) -> str:
    return "render_ms_le_inf" if edge == float("inf") else f"render_ms_le_{edge:g}"


RENDER_BUCKETS = tuple(render_bucket_metric(e) for e in RENDER_EDGES_MS)

# kind -> (Send column set the first time, metric name); opens and clicks count only when human.
FIRST_TIME: dict[str, tuple[str, str]] = {
    "open": ("opened_at", "open"),
    "click": ("clicked_at", "click"),
    "conversion": ("converted_at", "conversion"),
    "unsubscribe": ("unsubscribed_at", "unsubscribe"),
    "complaint": ("complained_at", "complaint"),
    "bounce": ("bounced_at", "bounce"),
}
PER_EVENT = {"delivered": "delivered"}  # plus machine opens and bot clicks, below
METRICS = (
    "sent",
    "failed",
    "render_ms",
    "delivered",
    "open",
    "open_machine",
    "click",
    "click_bot",
    "conversion",
    "revenue",
    "unsubscribe",
    "complaint",
    "bounce",
    *RENDER_BUCKETS,
)


class ArmKey(NamedTuple):
    campaign_id: int
    stage_index: int
    arm: str
    segment: str
    metric: str
    cohort: datetime


class _Where(NamedTuple):
    campaign_id: int
    rollout_id: int | None
    stage_index: int
    arm: str
    cohort: datetime


def cohort_of(sent_at: datetime | None) -> datetime:
    """The send-time cohort: the UTC hour the recipient was sent in (now when not recorded)."""
    moment = sent_at or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


Deltas = dict[ArmKey, list[float]]  # key -> [count, total, total_sq]


class _Accumulator:
    def __init__(self, segments: Mapping[int, Sequence[str]] | None) -> None:
        self.deltas: Deltas = defaultdict(lambda: [0.0, 0.0, 0.0])
        self.rollouts: dict[tuple[int, int, str], int | None] = {}
        self.segments = segments or {}
        self.cells: dict[tuple[_Where, str], dict[str, list[float]]] = {}  # add_send's rows by metric

    def add(
        self, send_id: int | None, where: _Where, metric: str, count: float, total: float, sq: float
    ) -> None:
        self.rollouts[(where.campaign_id, where.stage_index, where.arm)] = where.rollout_id
        labels = [WHOLE_ARM, *self.segments.get(send_id, ())] if send_id is not None else [WHOLE_ARM]
        for segment in labels:
            row = self.deltas[
                ArmKey(where.campaign_id, where.stage_index, where.arm, segment, metric, where.cohort)
            ]
            row[0] += count
            row[1] += total
            row[2] += sq

    def add_send(self, send_id: int, where: _Where, state: str, ms: float | None) -> None:
        """One send counted as `add` counts it (its state; its render time and histogram bucket),
        each aggregate row found once per (aggregate, segment) rather than keyed anew per metric."""
        self.rollouts[(where.campaign_id, where.stage_index, where.arm)] = where.rollout_id
        labels = self.segments.get(send_id)
        bucket = RENDER_BUCKETS[bisect.bisect_left(RENDER_EDGES_MS, ms)] if ms is not None else ""
        for segment in (WHOLE_ARM, *labels) if labels else _WHOLE_ONLY:
            cell = self.cells.get((where, segment))
            if cell is None:
                cell = self.cells[(where, segment)] = {}
            for metric, total, sq in (
                ((state, 1.0, 1.0), ("render_ms", ms, ms * ms), (bucket, 1.0, 1.0))
                if (ms is not None)
                else ((state, 1.0, 1.0),)
            ):
                row = cell.get(metric)
                if row is None:
                    row = cell[metric] = self.deltas[
                        ArmKey(where.campaign_id, where.stage_index, where.arm, segment, metric, where.cohort)
                    ]
                row[0] += 1
                row[1] += total
                row[2] += sq

    def flush(self, session: Session) -> None:
        if not self.deltas:
            return
        now = utcnow()
        rows = [
            {
                **key._asdict(),
                "rollout_id": self.rollouts.get((key.campaign_id, key.stage_index, key.arm)),
                "count": d[0],
                "total": d[1],
                "total_sq": d[2],
                "created_at": now,
                "updated_at": now,
            }
            for key, d in sorted(self.deltas.items())
        ]
        # one statement compiled once, run for every row (executemany): a batch of events may touch
        # many send-time cohorts, and compiling a multi-row VALUES per chunk would dominate. Built
        # once per dialect and run on the session's connection (after the ORM's pending writes, as
        # session.execute would flush them): none of the ORM's bulk-insert bookkeeping per chunk.
        session.flush()
        connection = session.connection()
        stmt = _upsert(connection.dialect.name)
        for start in range(0, len(rows), CHUNK):
            connection.execute(stmt, rows[start : start + CHUNK])
        self.deltas.clear()
        self.cells.clear()


@functools.cache
def _upsert(dialect_name: str) -> Any:
    """INSERT into arm_metrics, adding to the row already there (SQLite and PostgreSQL)."""
    table: sa.Table = ArmMetric.__table__  # type: ignore[assignment]
    stmt = (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=["campaign_id", "stage_index", "arm", "segment", "metric", "cohort"],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "total": table.c.total + stmt.excluded.total,
            "total_sq": table.c.total_sq + stmt.excluded.total_sq,
            "updated_at": stmt.excluded.updated_at,
        },
    )


def _where(send: Send | Any, cohort: datetime | None = None) -> _Where | None:
    """The aggregate a send counts in; forced treatment (allow-list, beta) is its own arm, "forced"."""
    if send.campaign_id is None or not send.arm:
        return None
    stage = send.stage_index if send.stage_index is not None else NO_STAGE
    arm = FORCED if getattr(send, "forced", False) else str(send.arm)
    return _Where(int(send.campaign_id), send.rollout_id, int(stage), arm, cohort or cohort_of(send.sent_at))


def record_sends(
    session: Session, sends: Iterable[Send | Any], segments: Mapping[int, Sequence[str]] | None = None
) -> None:
    """Count sends that reached `sent` or `failed` in this batch, and their render latency. `sends` are
    Send objects or rows with its columns (id, campaign_id, rollout_id, stage_index, arm, forced,
    sent_at, render_ms, state).

    Call it once per send and final state (the send path passes the rows it just moved); rows in any
    other state are ignored. `segments` optionally maps send ids to segment labels counted as well.
    """
    acc = _Accumulator(segments)
    cohorts: dict[datetime | None, datetime] = {}  # a chunk's sends share one sent_at
    wheres: dict[tuple[Any, ...], _Where | None] = {}  # and a few aggregates
    for send in sends:
        state = send.state
        if state not in ("sent", "failed"):
            continue
        sent_at = send.sent_at
        cohort = cohorts.get(sent_at)
        if cohort is None:
            cohort = cohorts[sent_at] = cohort_of(sent_at)
        raw = (
            send.campaign_id, send.rollout_id, send.stage_index, send.arm, getattr(send, "forced", False), cohort
        )  # fmt: skip
        where = wheres.get(raw, _UNSEEN)
        if where is _UNSEEN:
            where = wheres[raw] = _where(send, cohort)
        if where is None:
            continue
        acc.add_send(send.id, where, state, None if send.render_ms is None else float(send.render_ms))
    acc.flush(session)


_UNSEEN: Any = object()


_SEND_COLUMNS = (
    Send.id, Send.campaign_id, Send.rollout_id, Send.stage_index, Send.arm, Send.forced, Send.sent_at
)  # fmt: skip


def _send_info(session: Session, send_ids: Sequence[int]) -> dict[int, _Where]:
    out: dict[int, _Where] = {}
    for start in range(0, len(send_ids), CHUNK):
        chunk = send_ids[start : start + CHUNK]
        rows = session.execute(sa.select(*_SEND_COLUMNS).where(Send.id.in_(chunk)))
        for row in rows:
            where = _where(row)
            if where is not None:
                out[int(row.id)] = where
    return out


def _set_first_time(session: Session, column: str, first: dict[int, datetime]) -> list[Any]:
    """Set `column` where it is still NULL; returns the rows this call set (and only those)."""
    col = getattr(Send, column)
    out: list[Any] = []
    ids = sorted(first)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        value = sa.case({i: sa.literal(first[i], type_=col.type) for i in chunk}, value=Send.id)
        stmt = (
            sa.update(Send)
            .where(Send.id.in_(chunk), col.is_(None))
            .values({column: value})
            .returning(*_SEND_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        out.extend(session.execute(stmt).all())
    return out


def _add_revenue(session: Session, added: dict[int, float]) -> list[Any]:
    out: list[Any] = []
    ids = sorted(added)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        value = sa.case({i: sa.literal(added[i], type_=sa.Float()) for i in chunk}, value=Send.id)
        stmt = (
            sa.update(Send)
            .where(Send.id.in_(chunk))
            .values(revenue=Send.revenue + value)
            .returning(Send.revenue, *_SEND_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        out.extend(session.execute(stmt).all())
    return out


def record_events(
    session: Session, events: Sequence[Event], segments: Mapping[int, Sequence[str]] | None = None
) -> None:
    """Update per-recipient outcomes on `Send` and the per-arm aggregates from newly stored events.

    `events` must be stored and deduplicated already (each one passed once). Events without a send
    are ignored here: they cannot be attributed to an arm. A refund (a conversion with a negative
    value) lowers the revenue but never marks the recipient converted. Opens and clicks flagged `machine` are
    counted as ``open_machine`` / ``click_bot`` and never set ``opened_at`` / ``clicked_at``.
    """
    acc = _Accumulator(segments)
    firsts: dict[str, dict[int, datetime]] = defaultdict(dict)
    revenue: dict[int, float] = defaultdict(float)
    revenue_events: dict[int, int] = defaultdict(int)
    per_event: list[tuple[Event, str]] = []
    for ev in events:
        if ev.send_id is None:
            continue
        sid = int(ev.send_id)
        if ev.kind in ("open", "click") and ev.machine:
            per_event.append((ev, "open_machine" if ev.kind == "open" else "click_bot"))
            continue
        if ev.kind in PER_EVENT:
            per_event.append((ev, PER_EVENT[ev.kind]))
        if ev.kind in FIRST_TIME and not (ev.kind == "conversion" and (ev.value or 0) < 0):
            at = ev.occurred_at or utcnow()
            seen = firsts[ev.kind].get(sid)
            if seen is None or at < seen:
                firsts[ev.kind][sid] = at
        if ev.kind == "conversion" and ev.value:
            revenue[sid] += float(ev.value)
            revenue_events[sid] += 1

    if per_event:
        looked_up = _send_info(session, sorted({int(ev.send_id) for ev, _ in per_event}))  # type: ignore[arg-type]
        for ev, metric in per_event:
            where = looked_up.get(int(ev.send_id))  # type: ignore[arg-type]
            if where is not None:
                acc.add(ev.send_id, where, metric, 1, 1, 1)

    for kind in sorted(firsts):
        column, metric = FIRST_TIME[kind]
        for row in _set_first_time(session, column, firsts[kind]):
            where = _where(row)
            if where is not None:
                acc.add(int(row.id), where, metric, 1, 1, 1)

    for row in _add_revenue(session, revenue) if revenue else []:
        where = _where(row)
        if where is None:
            continue
        new = float(row.revenue)
        added = revenue[int(row.id)]
        old = new - added
        acc.add(int(row.id), where, "revenue", revenue_events[int(row.id)], added, new * new - old * old)
    acc.flush(session)
