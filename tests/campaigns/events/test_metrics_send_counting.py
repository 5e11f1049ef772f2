"""`record_sends` counts each send in one pass (`_Accumulator.add_send`): the same aggregates, to the
bit, as counting it metric by metric with `_Accumulator.add`."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from campaigns.events import metrics

T0 = datetime(2024, 11, 1, 9, 0, tzinfo=UTC)


class Row(NamedTuple):
    id: int
    campaign_id: int | None
    rollout_id: int | None
    stage_index: int | None
    arm: str
    forced: bool
    sent_at: datetime | None
    render_ms: float | None
    state: str


def sends(n: int, seed: int = 7) -> tuple[list[Row], dict[int, list[str]]]:
    rng = random.Random(seed)
    rows, segments = [], {}
    for i in range(n):
        rows.append(
            Row(
                i,
                rng.choice([1, 1, 1, 2, None]),
                rng.choice([None, 5]),
                rng.choice([None, 0, 2]),
                rng.choice(["treatment", "control", "holdout", ""]),
                rng.random() < 0.1,
                rng.choice([T0, T0 + timedelta(minutes=70)]),
                rng.choice([None, rng.random() * 40, rng.random() * 4000, 1.0, 10.0]),
                rng.choice(["sent", "sent", "sent", "failed", "queued"]),
            )
        )
        if rng.random() < 0.3:
            segments[i] = rng.sample(["EU", "VIP", "new"], rng.randint(0, 2))
    return rows, segments


def metric_by_metric(rows: list[Row], segments: dict[int, list[str]]) -> metrics.Deltas:
    """What record_sends counted before it counted in one pass: one `add` per metric."""
    acc = metrics._Accumulator(segments)
    for send in rows:
        if send.state not in ("sent", "failed"):
            continue
        where = metrics._where(send, metrics.cohort_of(send.sent_at))
        if where is None:
            continue
        acc.add(send.id, where, send.state, 1, 1, 1)
        if send.render_ms is not None:
            ms = float(send.render_ms)
            acc.add(send.id, where, "render_ms", 1, ms, ms * ms)
            bucket = metrics.RENDER_BUCKETS[bisect.bisect_left(metrics.RENDER_EDGES_MS, ms)]
            acc.add(send.id, where, bucket, 1, 1, 1)
    return dict(acc.deltas)


def test_one_pass_counts_every_aggregate_exactly_as_metric_by_metric(monkeypatch: Any) -> None:
    rows, segments = sends(3000)
    flushed: list[metrics.Deltas] = []
    monkeypatch.setattr(metrics._Accumulator, "flush", lambda acc, session: flushed.append(dict(acc.deltas)))

    metrics.record_sends(None, rows, segments=segments)  # type: ignore[arg-type]

    expected = metric_by_metric(rows, segments)
    assert flushed[0] == expected  # floats compared exactly: same additions in the same order
    assert len(expected) > 100
