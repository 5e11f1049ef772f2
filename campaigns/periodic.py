"""Periodic jobs, declared as data: rq's cron scheduler registers each one (see worker.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campaigns import jobs


@dataclass(frozen=True)
class PeriodicJob:
    func: Callable[..., Any]
    interval: int | None = None  # seconds
    cron: str | None = None
    timeout: int = 600


def periodic_jobs() -> list[PeriodicJob]:
    declared = [
        PeriodicJob(jobs.ingest_job, interval=2, timeout=300),
        PeriodicJob(jobs.dispatch_due_job, interval=15),
        PeriodicJob(jobs.resume_open_waves_job, interval=60),
    ]
    try:  # the evaluator, when the statistics package provides one
        from campaigns.evaluation import evaluate_all_job

        declared.append(PeriodicJob(evaluate_all_job, interval=300, timeout=1200))
    except ImportError:
        pass
    return declared
