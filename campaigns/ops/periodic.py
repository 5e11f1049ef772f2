"""Periodic jobs, declared as data, and the scheduler that enqueues them (`worker.py --cron-only`).

A periodic job is not enqueued again while its previous run is still queued or running on a live
worker, so a slow ingest or evaluation never piles up copies of itself. The scheduler rides out Redis
outages: it logs, waits with backoff (up to a minute) and carries on when Redis answers again.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from campaigns import jobs
from campaigns.demo.simulate import outbox_recipients_job
from campaigns.ops import queues
from campaigns.runtime import Runtime

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class PeriodicJob:
    func: Callable[..., Any]
    interval: int | None = None  # seconds
    cron: str | None = None
    timeout: int = 600
    queue: str = queues.DEFAULT

    @property
    def job_id(self) -> str:
        module = queues.FORMER_MODULES.get(self.func.__module__, self.func.__module__)
        name = f"{module}.{self.func.__qualname__}"
        return "periodic-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def periodic_jobs() -> list[PeriodicJob]:
    from campaigns.decisions.evaluation import CRON_JOBS
    from campaigns.flows.scheduler import flow_tick_job
    from campaigns.flows.time_triggers import time_triggers_job
    from campaigns.ops.recovery import recover_interrupted_job
    from campaigns.privacy.retention import retention_job

    declared = [
        PeriodicJob(jobs.ingest_job, interval=2, timeout=300, queue=queues.INGEST),
        PeriodicJob(jobs.dispatch_due_job, interval=15),
        PeriodicJob(jobs.resume_open_waves_job, interval=60),
        PeriodicJob(retention_job, cron="17 3 * * *", timeout=3600),  # daily, 03:17 UTC
        PeriodicJob(outbox_recipients_job, interval=10, timeout=120),  # does nothing unless switched on
        PeriodicJob(recover_interrupted_job, interval=60),
        PeriodicJob(flow_tick_job, interval=10, timeout=600),  # due flow steps (campaigns.flows)
        PeriodicJob(time_triggers_job, interval=300, timeout=1800),  # segment, inactivity, dates
    ]
    for spec in CRON_JOBS:  # the evaluator's and the webhooks' own declarations
        module, _, name = spec["func"].rpartition(".")
        func = getattr(importlib.import_module(module), name)
        declared.append(
            PeriodicJob(
                func,
                interval=spec.get("interval"),
                cron=spec.get("cron"),
                timeout=spec.get("job_timeout", 600),
                queue=spec.get("queue")
                or (queues.WEBHOOKS if "webhook" in spec.get("name", "") else queues.DEFAULT),
            )
        )
    return declared


def _next_run(job: PeriodicJob, after: datetime) -> datetime:
    if job.cron:
        from croniter import croniter

        nxt: datetime = croniter(job.cron, after).get_next(datetime)
        return nxt
    return datetime.fromtimestamp(after.timestamp() + float(job.interval or 60), UTC)


def enqueue_unless_pending(rt: Runtime, job: PeriodicJob) -> bool:
    """Enqueue one run, unless the previous one is still queued or running. True when enqueued."""
    q = queues.queue(rt, job.queue)
    if jobs.job_is_live(rt, q.fetch_job(job.job_id)):
        return False
    q.enqueue(job.func, job_id=job.job_id, job_timeout=job.timeout, result_ttl=600, failure_ttl=86_400)
    return True


def run_scheduler(rt: Runtime, stop: threading.Event | None = None, tick: float = 1.0) -> None:
    """Enqueue each periodic job when due, until `stop` is set."""
    stop = stop or threading.Event()
    declared = periodic_jobs()
    now = datetime.now(UTC)
    due = {job.job_id: now for job in declared}
    backoff = 1.0
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            for job in declared:
                if due[job.job_id] <= now:
                    enqueue_unless_pending(rt, job)
                    due[job.job_id] = _next_run(job, now)
        except RedisError as exc:
            log.warning("scheduler: Redis unreachable (%s); retrying in %.0f s", exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        stop.wait(tick)
