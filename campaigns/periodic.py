"""Periodic jobs, declared as data: rq's cron scheduler registers each one (see worker.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campaigns import jobs
from campaigns.simulate import outbox_recipients_job


@dataclass(frozen=True)
class PeriodicJob:
    func: Callable[..., Any]
    interval: int | None = None  # seconds
    cron: str | None = None
    timeout: int = 600


def periodic_jobs() -> list[PeriodicJob]:
    from campaigns.evaluation import CRON_JOBS
    from campaigns.privacy.retention import retention_job

    declared = [
        PeriodicJob(jobs.ingest_job, interval=2, timeout=300),
        PeriodicJob(jobs.dispatch_due_job, interval=15),
        PeriodicJob(jobs.resume_open_waves_job, interval=60),
        PeriodicJob(retention_job, cron="17 3 * * *", timeout=3600),  # daily, 03:17 UTC
        PeriodicJob(outbox_recipients_job, interval=10, timeout=120),  # does nothing unless switched on
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
            )
        )
    return declared
