"""The installation's state, read when Prometheus scrapes: queues, ingest lag, events per arm, decisions.

These are facts about the shared Redis and database, the same whichever host answers, so only the
web tier's `/metrics` reports them (each worker host's own endpoint reports its process counters).
Each read is small: rq's registries per queue, the head of the event stream, and two GROUP BYs over
the per-arm aggregates and the decisions (tables of a few rows per rollout).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from campaigns.events.tracking import GROUP, STREAM
from campaigns.ops.queues import all_queues
from campaigns.ops.signals import PREFIX
from campaigns.runtime import Runtime
from models import ArmMetric, Decision


class ClusterCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        yield from self._queues()
        yield from self._ingest()
        yield from self._database()

    def _queues(self) -> Iterator[Any]:
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_jobs", "rq jobs per queue and state", labels=["queue", "state"]
        )
        queues = {q.name: q for q in Queue.all(connection=self.rt.redis)}
        for known in all_queues(self.rt):  # every kind of work, also before its first job
            queues.setdefault(known.name, known)
        for name, q in sorted(queues.items()):
            depth.add_metric([name, "queued"], q.count)
            for state, registry in (
                ("started", StartedJobRegistry),
                ("deferred", DeferredJobRegistry),
                ("scheduled", ScheduledJobRegistry),
                ("failed", FailedJobRegistry),
            ):
                depth.add_metric([name, state], registry(queue=q).count)
        yield depth

    def _ingest(self) -> Iterator[Any]:
        redis = self.rt.redis
        backlog = int(redis.xlen(STREAM)) if redis.exists(STREAM) else 0
        lag = 0.0
        pending = 0
        if backlog:
            oldest = redis.xrange(STREAM, count=1)
            if oldest:
                entry_id = oldest[0][0]
                millis = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
                lag = max(time.time() - millis / 1000.0, 0.0)
            try:
                pending = int(redis.xpending(STREAM, GROUP)["pending"])
            except Exception:  # no consumer group yet: nothing was ever ingested
                pending = 0
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_lag_seconds",
            "Age of the oldest tracking event not yet stored (0 when the stream is empty)",
            value=lag,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_backlog_events", "Tracking events waiting in the stream", value=backlog
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_pending_events",
            "Events read by an ingest worker but not yet acknowledged",
            value=pending,
        )

    def _database(self) -> Iterator[Any]:
        events = CounterMetricFamily(
            f"{PREFIX}_arm_events",
            "Events and sends per rollout arm (the per-arm aggregates)",
            labels=["rollout", "arm", "metric"],
        )
        decisions = CounterMetricFamily(
            f"{PREFIX}_decisions", "Rollout decisions by outcome", labels=["outcome", "applied"]
        )
        with self.rt.session() as session:
            rows = session.execute(
                sa.select(ArmMetric.rollout_id, ArmMetric.arm, ArmMetric.metric, sa.func.sum(ArmMetric.count))
                .where(ArmMetric.segment == "", ArmMetric.rollout_id.is_not(None))
                .group_by(ArmMetric.rollout_id, ArmMetric.arm, ArmMetric.metric)
            ).all()
            for rollout_id, arm, metric, count in rows:
                events.add_metric([str(rollout_id), arm, metric], float(count or 0))
            for outcome, applied, count in session.execute(
                sa.select(Decision.outcome, Decision.applied, sa.func.count()).group_by(
                    Decision.outcome, Decision.applied
                )
            ).all():
                decisions.add_metric([outcome, "true" if applied else "false"], float(count))
        yield events
        yield decisions
