"""The ledger's writes on the send path: a chunk marked `sending` before delivery, then each row
`sent`, `failed` or back to `queued` with the server's reply, counted in the aggregates
(campaigns.events.metrics), each chunk in one commit.

Core statements, one per chunk rather than one per row: the accepted rows in one UPDATE by id list,
per-row values in one executemany of one compiled statement, with none of the ORM's per-row
bookkeeping.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events import metrics
from campaigns.sending.delivery import DeliveryResult
from models import Send, utcnow


class Counts(Protocol):
    sent: int
    failed: int
    retry_later: int
    arms: dict[str, int]


class Written(NamedTuple):
    """What the worker wrote to a ledger row when it marked it `sending`: the keys of its aggregate."""

    campaign_id: int
    rollout_id: int | None
    stage_index: int | None
    arm: str
    forced: bool
    render_ms: float | None
    segments: list[str]


def record(
    session: Session,
    results: Sequence[DeliveryResult],
    attempts: dict[int, int],
    max_attempts: int,
    outcome: Counts,
    only_state: str | None = None,
    written: Mapping[int, Written] | None = None,
) -> None:
    """Move delivered rows to `sent`, `failed` or back to `queued`, and count them in the aggregates.
    `written`: what this worker wrote to the rows when it marked them `sending` (else they are read)."""
    now = utcnow()
    sent: list[int] = []
    others: list[dict[str, Any]] = []  # failed for good or for now: each with its own reply
    for r in results:
        if r.accepted:
            sent.append(r.send_id)
            outcome.sent += 1
        elif r.permanent or attempts.get(r.send_id, 0) >= max_attempts:
            others.append({"id": r.send_id, "state": "failed", "error": r.error})
            outcome.failed += 1
        else:
            others.append({"id": r.send_id, "state": "queued", "error": r.error})
            outcome.retry_later += 1
    if only_state:
        ids = [*sent, *(u["id"] for u in others)]
        current = set(session.scalars(sa.select(Send.id).where(Send.id.in_(ids), Send.state == only_state)))
        sent = [i for i in sent if i in current]
        others = [u for u in others if u["id"] in current]
    if sent:  # the common case: one statement for the whole chunk
        session.execute(
            sa.update(_SENDS)
            .where(_SENDS.c.id.in_(sent))
            .values(state="sent", sent_at=now, error="")
            .execution_options(synchronize_session=False)
        )
    if others:
        update_by_id(session, others)
    finished = [*sent, *(u["id"] for u in others if u["state"] == "failed")]
    if finished:
        rows: Sequence[Any]
        if written is not None and all(i in written for i in finished):
            states = {u["id"]: u["state"] for u in others}
            rows = [_metric_row(i, written[i], states.get(i, "sent"), now) for i in finished]
        else:
            rows = session.execute(sa.select(*_METRIC_COLUMNS).where(_SENDS.c.id.in_(finished))).all()
        for row in rows:
            outcome.arms[row.arm] = outcome.arms.get(row.arm, 0) + 1
        metrics.record_sends(session, rows, segments={row.id: row.segments for row in rows if row.segments})
    session.commit()


class _MetricRow(NamedTuple):
    """The columns metrics.record_sends reads, as the ledger row now holds them."""

    id: int
    campaign_id: int
    rollout_id: int | None
    stage_index: int | None
    arm: str
    forced: bool
    sent_at: datetime | None
    render_ms: float | None
    state: str
    segments: list[str]


def _metric_row(send_id: int, w: Written, state: str, now: datetime) -> _MetricRow:
    sent_at = now if state == "sent" else None
    return _MetricRow(
        send_id, w.campaign_id, w.rollout_id, w.stage_index, w.arm, w.forced, sent_at, w.render_ms, state,
        w.segments,
    )  # fmt: skip


_SENDS: sa.Table = Send.__table__  # type: ignore[assignment]
_METRIC_COLUMNS = tuple(
    _SENDS.c[name]
    for name in (
        "id", "campaign_id", "rollout_id", "stage_index", "arm", "forced", "sent_at", "render_ms", "state",
        "segments",
    )
)  # fmt: skip


@functools.cache
def _update_statement(dialect: sa.Dialect, columns: tuple[str, ...]) -> tuple[str, list[tuple[str, Any]]]:
    """UPDATE sends SET <columns> WHERE id = ?, compiled once for this dialect: its SQL and, in the
    order the driver takes them, each parameter's column and the column type's bind processor."""
    statement = (
        sa.update(_SENDS)
        .where(_SENDS.c.id == sa.bindparam("v_id", type_=_SENDS.c.id.type))
        .values({name: sa.bindparam(f"v_{name}", type_=_SENDS.c[name].type) for name in columns})
    )
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or compiled.binds)
    order = [(name, _SENDS.c[name[2:]].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    return str(compiled), order


def update_by_id(session: Session, rows: list[dict[str, Any]]) -> None:
    """Per-row values (every row the same keys, `id` among them) as one executemany of a statement
    compiled once, values converted by the columns' types: none of the ORM's or the compiler's
    per-row work. A JSON list of labels (`segments`: the same few lists on every row of a chunk) is
    serialized once per distinct list, not once per row."""
    connection = session.connection()
    sql, order = _update_statement(connection.dialect, tuple(k for k in rows[0] if k != "id"))
    converters = [
        (name[2:], _labels_memo(convert) if name[2:] in _JSON_COLUMNS else convert) for name, convert in order
    ]
    values = [
        tuple(row[column] if convert is None else convert(row[column]) for column, convert in converters)
        for row in rows
    ]
    if connection.dialect.positional:
        connection.exec_driver_sql(sql, values)
    else:
        names = [name for name, _ in order]
        connection.exec_driver_sql(sql, [dict(zip(names, v, strict=True)) for v in values])


_JSON_COLUMNS = frozenset(c.name for c in _SENDS.c if isinstance(c.type, sa.JSON))


def _labels_memo(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """`convert`, remembering its result for lists of strings (one call of update_by_id long)."""
    if convert is None:
        return None
    seen: dict[tuple[str, ...], Any] = {}

    def remembered(value: Any) -> Any:
        if type(value) is not list or not all(type(v) is str for v in value):
            return convert(value)
        key = tuple(value)
        hit = seen.get(key)
        if hit is None:
            hit = seen[key] = convert(value)
        return hit

    return remembered
