"""rq job functions: thin. Each opens a session through the installed runtime and calls the engine.

Job ids are derived from what the job does (`send-<campaign>-<wave>-<batch>`), so planning or resuming
the same work twice names the same job, and a duplicate run is harmless (the ledger decides).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from redis.exceptions import RedisError
from rq import Retry, Worker
from rq.job import Job
from sqlalchemy.exc import DBAPIError

from campaigns import queues, runtime
from campaigns.ingest import ingest
from campaigns.runtime import Runtime
from campaigns.sending.liveness import HOST, pid_alive
from campaigns.sending.planner import PlannedBatch, open_batches, plan_wave
from campaigns.sending.send import send_batch
from models import Campaign, Rollout, Send, Wave, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
SEND_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])


def start_wave(
    rt: Runtime, campaign_id: int, limit: int | None, now: datetime | None = None
) -> dict[str, Any]:
    """Plan a wave (one SQL statement), then enqueue its scoring and batch jobs. Returns the wave."""
    with rt.session() as session:
        wave, batches = plan_wave(session, campaign_id, limit, rt.settings.batch_size, now)
        campaign = session.get(Campaign, campaign_id)
        needs_scoring = bool(campaign and campaign.rollout_id)
        summary = {
            "wave_id": wave.id,
            "number": wave.number,
            "planned": wave.planned,
            "batches": len(batches),
        }
    enqueue_batches(rt, batches, score_first=needs_scoring)
    return summary


def enqueue_batches(rt: Runtime, batches: list[PlannedBatch], score_first: bool = False) -> list[str]:
    if not batches:
        return []
    q = queues.queue(rt, queues.SENDING)
    depends: Job | None = None
    if score_first:
        wave_id = batches[0].wave_id
        depends = queues.queue(rt, queues.SCORING).enqueue(
            score_wave_job,
            wave_id,
            job_id=f"score-{wave_id}",
            job_timeout=1800,
            retry=Retry(max=2, interval=30),
        )
    ids = []
    for b in batches:
        job = q.enqueue(
            send_batch_job,
            b.campaign_id,
            b.wave_id,
            b.batch,
            job_id=b.job_id,
            retry=SEND_RETRY,
            job_timeout=1800,
            depends_on=depends,
            result_ttl=86_400,
        )
        ids.append(job.id)
    return ids


def score_wave_job(wave_id: int) -> int:
    """Batch-score the wave's contacts before sending, so the send path only looks them up."""
    from campaigns.recommender.service import ensure_scored

    rt = runtime.current()
    with rt.session() as session:
        wave = session.get(Wave, wave_id)
        campaign = session.get(Campaign, wave.campaign_id) if wave else None
        if wave is None or campaign is None or campaign.rollout_id is None:
            return 0
        rollout = session.get(Rollout, campaign.rollout_id)
        ids = list(session.scalars(sa.select(Send.contact_id).where(Send.wave_id == wave_id)))
        try:
            return ensure_scored(session, rollout.model_version_id if rollout else None, ids)
        except Exception:  # fail closed: unscored contacts get the popularity fallback at send time
            log.exception("scoring wave %s failed; the send path falls back", wave_id)
            return 0


def send_batch_job(campaign_id: int, wave_id: int, batch: int) -> dict[str, Any]:
    rt = runtime.current()
    outcome = ride_out_outages(
        lambda: send_batch(rt, campaign_id, wave_id, batch), f"batch {wave_id}/{batch}"
    )
    if outcome.wave_finished:
        evaluate_after_wave(rt, campaign_id, wave_id)
    return asdict(outcome)


INFRA_BACKOFF = (0.5, 1, 2, 4, 8, 15, 30, 30, 30)  # about two minutes in all, then rq's own retries


def ride_out_outages(work: Callable[[], T], what: str, backoff: Sequence[float] = INFRA_BACKOFF) -> T:
    """Run `work`; when the database or Redis fails under it (a restart, a cut connection), wait and
    run it again. The ledger and the journal make a re-run exact: it resumes where the last one got."""
    for pause in (*backoff, None):
        try:
            return work()
        except (DBAPIError, RedisError) as exc:
            if pause is None:
                raise
            log.warning("%s: %s unreachable (%s); again in %.1f s", what, _service(exc), exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _service(exc: Exception) -> str:
    return "Redis" if isinstance(exc, RedisError) else "the database"


def evaluate_after_wave(rt: Runtime, campaign_id: int, wave_id: int) -> None:
    """The evaluator looks after every wave (its statistics stay valid under such peeking)."""
    from campaigns.evaluation import run_evaluation

    with rt.session() as session:
        campaign = session.get(Campaign, campaign_id)
        rollout_id = campaign.rollout_id if campaign else None
    if rollout_id is not None:
        queues.queue(rt, queues.DEFAULT).enqueue(
            run_evaluation, rollout_id, job_id=f"evaluate-{rollout_id}-wave-{wave_id}"
        )


def ingest_job() -> dict[str, int]:
    return asdict(ingest(runtime.current()))


def resume_open_waves_job() -> int:
    return resume_open_waves(runtime.current())


def resume_open_waves(rt: Runtime) -> int:
    """Re-enqueue batches of waves that still have unsent rows and no live job (after a crash).

    A job counts as live when it is queued, or started by a worker that is still alive: its rq
    worker record exists and, on this host, its process does.
    """
    q = queues.queue(rt, queues.SENDING)
    with rt.session() as session:
        wave_ids = list(session.scalars(sa.select(Wave.id).where(Wave.status == "sending")))
        todo = [b for wave_id in wave_ids for b in open_batches(session, wave_id)]
    resumed = [b for b in todo if not job_is_live(rt, q.fetch_job(b.job_id))]
    enqueue_batches(rt, resumed)
    return len(resumed)


def job_is_live(rt: Runtime, job: Job | None) -> bool:
    """Queued or waiting to run, or started by a worker that is still alive."""
    if job is None:
        return False
    status = job.get_status(refresh=True)
    if status in ("queued", "deferred", "scheduled"):
        return True
    return status == "started" and _worker_alive(rt, job.worker_name)


def _worker_alive(rt: Runtime, name: str | None) -> bool:
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=rt.redis)
    if worker is None:
        return False
    return not (worker.hostname == HOST and worker.pid is not None and not pid_alive(worker.pid))


def dispatch_due_job(now: datetime | None = None) -> list[int]:
    """Start timed campaigns whose time has come, and the next occurrence of recurring ones."""
    from campaigns.schedule import due_campaigns

    rt = runtime.current()
    now = now or utcnow()
    started = []
    with rt.session() as session:
        due = due_campaigns(session, now)
    for campaign_id, limit in due:
        try:
            start_wave(rt, campaign_id, limit, now)
            started.append(campaign_id)
        except Exception:
            log.exception("could not start scheduled campaign %s", campaign_id)
    return started
