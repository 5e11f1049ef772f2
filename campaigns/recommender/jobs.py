"""rq job functions of the recommender (training lives in `training.train_job`) and their enqueueing."""

from __future__ import annotations

from typing import Any

from campaigns import runtime
from campaigns.ops import queues
from campaigns.recommender import drift, registry
from campaigns.recommender.training import train_job
from campaigns.runtime import Runtime

TRAIN_TIMEOUT = 3600


def drift_job(version_id: int) -> dict[str, Any]:
    """Re-measure a version's drift against the current contacts and catalog, and store it."""
    with runtime.current().session() as session:
        return drift.record(session, registry.get(session, version_id))


def enqueue_training(
    rt: Runtime,
    kind: str = "blend",
    params: dict[str, Any] | None = None,
    actor: str = "",
    window_days: int | None = None,
) -> str:
    """Queue a training run; returns the rq job id."""
    queue = queues.queue(rt, queues.TRAINING)
    job = queue.enqueue(
        train_job,
        kind,
        params or {},
        actor or "scheduler",
        window_days,
        job_timeout=TRAIN_TIMEOUT,
        result_ttl=86_400,
    )
    return str(job.id)


def enqueue_drift(rt: Runtime, version_id: int) -> str:
    queue = queues.queue(rt, queues.SCORING)
    return str(queue.enqueue(drift_job, version_id, job_id=f"model-drift-{version_id}", result_ttl=3600).id)
