"""Rebuild a rollout's whole-arm aggregates from the send ledger and the stored events.

The incremental path (`campaigns.events.metrics`) is what runs; this recomputes the same `ArmMetric` rows
(segment "") from scratch with a few GROUP BY queries: to repair aggregates after a bug or an
outage, to backfill a rollout recorded before aggregates existed, and to check the incremental path
(a test asserts both give the same numbers). Per-recipient outcomes are derived from events (first
human open, click, conversion, unsubscribe, complaint, bounce per send), revenue sums of squares
from per-send revenue. Segment rows are not rebuilt (segment labels are not stored on sends).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events.metrics import (
    FORCED,
    NO_STAGE,
    RENDER_EDGES_MS,
    WHOLE_ARM,
    ArmKey,
    cohort_of,
    render_bucket_metric,
)
from models import ArmMetric, Event, Send, utcnow

_FIRST_TIME = {"open": "open", "click": "click", "conversion": "conversion", "unsubscribe": "unsubscribe",
               "complaint": "complaint", "bounce": "bounce"}  # fmt: skip
_PER_EVENT = {("delivered", False): "delivered", ("delivered", True): "delivered",
              ("open", True): "open_machine", ("click", True): "click_bot"}  # fmt: skip


def _sql_text(value: str) -> sa.ColumnElement[str]:
    """An inline SQL literal: GROUP BY must repeat the SELECT expression exactly, bind parameters included."""
    return sa.literal_column("'" + value.replace("'", "''") + "'", sa.String())


def _arm_expr() -> sa.ColumnElement[str]:
    return sa.case((Send.forced.is_(True), _sql_text(FORCED)), else_=Send.arm)


def _stage_expr() -> sa.ColumnElement[int]:
    return sa.func.coalesce(Send.stage_index, sa.literal_column(str(NO_STAGE)))


def _cohort_expr(session: Session) -> sa.ColumnElement[Any]:
    """The send hour in SQL (the cohort `campaigns.events.metrics.cohort_of` gives in Python)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.date_trunc("hour", Send.sent_at)
    return sa.func.strftime("%Y-%m-%d %H:00:00", Send.sent_at)


def _cohort(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return cohort_of(value)


def _render_bucket() -> sa.ColumnElement[str]:
    whens = [
        (Send.render_ms <= edge, sa.literal(render_bucket_metric(edge))) for edge in RENDER_EDGES_MS[:-1]
    ]
    return sa.case(*whens, else_=sa.literal(render_bucket_metric(RENDER_EDGES_MS[-1])))


def rebuild_aggregates(session: Session, rollout_id: int) -> int:
    """Replace the rollout's whole-arm `ArmMetric` rows; returns how many rows were written."""
    sums: dict[ArmKey, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    where = (Send.rollout_id == rollout_id) & Send.state.in_(("sent", "failed"))
    arm, stage, cohort = _arm_expr(), _stage_expr(), _cohort_expr(session)
    keys = (Send.campaign_id, stage, arm, cohort)

    for campaign, st, a, co, state, n, rendered, total, total_sq in session.execute(
        sa.select(*keys, Send.state, sa.func.count(), sa.func.count(Send.render_ms), sa.func.sum(Send.render_ms),
                  sa.func.sum(Send.render_ms * Send.render_ms))
        .where(where)
        .group_by(*keys, Send.state)
    ):  # fmt: skip
        sums[ArmKey(campaign, st, a, WHOLE_ARM, state, _cohort(co))] = [float(n)] * 3
        row = sums[ArmKey(campaign, st, a, WHOLE_ARM, "render_ms", _cohort(co))]
        row[0] += float(rendered or 0)
        row[1] += float(total or 0)
        row[2] += float(total_sq or 0)
    bucket = _render_bucket()
    for campaign, st, a, co, metric, n in session.execute(
        sa.select(*keys, bucket, sa.func.count())
        .where(where, Send.render_ms.is_not(None))
        .group_by(*keys, bucket)
    ):
        sums[ArmKey(campaign, st, a, WHOLE_ARM, metric, _cohort(co))] = [float(n)] * 3

    joined = (
        sa.select(*keys)
        .join_from(Event, Send, Send.id == Event.send_id)
        .where(Event.rollout_id == rollout_id)
    )
    for campaign, st, a, co, kind, machine, n in session.execute(
        joined.add_columns(Event.kind, Event.machine, sa.func.count())
        .where(Event.kind.in_(("delivered", "open", "click")))
        .group_by(*keys, Event.kind, Event.machine)
    ):
        per_event = _PER_EVENT.get((kind, bool(machine)))
        if per_event is not None:
            sums[ArmKey(campaign, st, a, WHOLE_ARM, per_event, _cohort(co))][0] += float(n)
    human = sa.or_(
        Event.kind.in_(("conversion", "unsubscribe", "complaint", "bounce")), Event.machine.is_(False)
    )
    for campaign, st, a, co, kind, n in session.execute(
        joined.add_columns(Event.kind, sa.func.count(sa.distinct(Event.send_id)))
        .where(Event.kind.in_(tuple(_FIRST_TIME)), human)
        .group_by(*keys, Event.kind)
    ):
        sums[ArmKey(campaign, st, a, WHOLE_ARM, _FIRST_TIME[kind], _cohort(co))] = [float(n)] * 3
    per_send = (
        sa.select(Event.send_id, sa.func.sum(Event.value).label("r"), sa.func.count().label("c"))
        .where(Event.rollout_id == rollout_id, Event.kind == "conversion", Event.value != 0)
        .group_by(Event.send_id)
        .subquery()
    )
    for campaign, st, a, co, c, r, r2 in session.execute(
        sa.select(*keys, sa.func.sum(per_send.c.c), sa.func.sum(per_send.c.r), sa.func.sum(per_send.c.r * per_send.c.r))
        .join_from(per_send, Send, Send.id == per_send.c.send_id)
        .group_by(*keys)
    ):  # fmt: skip
        sums[ArmKey(campaign, st, a, WHOLE_ARM, "revenue", _cohort(co))] = [float(c), float(r), float(r2)]

    per_event_metrics = {"delivered", "open_machine", "click_bot"}
    for key, d in sums.items():
        if key.metric in per_event_metrics:
            d[1] = d[2] = d[0]
    session.execute(
        sa.delete(ArmMetric).where(ArmMetric.rollout_id == rollout_id, ArmMetric.segment == WHOLE_ARM)
    )
    now = utcnow()
    rows = [
        {**key._asdict(), "rollout_id": rollout_id, "count": d[0], "total": d[1], "total_sq": d[2],
         "created_at": now, "updated_at": now}
        for key, d in sorted(sums.items())
    ]  # fmt: skip
    if rows:
        session.execute(sa.insert(ArmMetric), rows)
    return len(rows)
