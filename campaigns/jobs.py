"""rq job functions: thin. Each opens a session through the installed runtime and calls the engine.

Job ids are derived from what the job does (`send-<campaign>-<wave>-<batch>`), so planning or resuming
the same work twice names the same job, and a duplicate run is harmless (the ledger decides).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from redis.exceptions import RedisError, ResponseError
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy.exc import DBAPIError

from campaigns import runtime
from campaigns.events.ingest import ingest
from campaigns.ops import queues, signals
from campaigns.runtime import Runtime
from campaigns.sending.liveness import HOST, pid_alive
from campaigns.sending.planner import PlannedBatch, open_batches, plan_wave
from campaigns.sending.send import send_batch
from models import Campaign, Rollout, Send, Wave, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
SEND_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
SCORE_RETRY = Retry(max=5, interval=[30, 120, 600, 1800, 3600])


class WaveNotScored(RuntimeError):
    """An AI wave's batch ran before its contacts were scored: it waits rather than send best-sellers."""


def start_wave(
    rt: Runtime,
    campaign_id: int,
    limit: int | None,
    now: datetime | None = None,
    local_hour: int | None = None,
    default_timezone: str = "UTC",
) -> dict[str, Any]:
    """Plan a wave (one SQL statement), then enqueue its scoring and batch jobs. Returns the wave.
    With `local_hour`, each batch is scheduled for its contacts' local hour (campaigns.sending.local_time)."""
    with rt.session() as session:
        wave, batches = plan_wave(
            session, campaign_id, limit, rt.settings.batch_size, now, local_hour, default_timezone
        )
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
            retry=SCORE_RETRY,
        )
    ids = []
    for b in batches:
        if b.not_before is not None and b.not_before > utcnow() + timedelta(seconds=1):
            later = q.enqueue_at(
                b.not_before,
                send_batch_job,
                b.campaign_id,
                b.wave_id,
                b.batch,
                job_id=b.job_id,
                retry=SEND_RETRY,
                job_timeout=1800,
                result_ttl=86_400,
            )
            ids.append(later.id)
            continue
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
    """Batch-score the wave's contacts before sending, so the send path only looks them up.

    A failure is never silent: it is recorded on the wave and raised, so rq retries it and the
    wave's batches (which depend on this job) wait; none sends best-sellers as if they were AI.
    """
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
            written = ensure_scored(session, rollout.model_version_id if rollout else None, ids)
        except Exception as exc:
            session.rollback()
            log.exception("scoring wave %s failed; its batches wait", wave_id)
            session.execute(
                sa.update(Wave)
                .where(Wave.id == wave_id)
                .values(scoring_error=f"{type(exc).__name__}: {exc}"[:2000])
            )
            session.commit()
            raise
        session.execute(
            sa.update(Wave).where(Wave.id == wave_id).values(scored_at=utcnow(), scoring_error="")
        )
        return written


def _needs_scoring(session: Any, wave_id: int) -> str | None:
    """Why an AI wave cannot send yet (its contacts are not scored), or None when it can."""
    row = session.execute(
        sa.select(Wave.scored_at, Wave.scoring_error, Campaign.rollout_id)
        .join(Campaign, Campaign.id == Wave.campaign_id)
        .where(Wave.id == wave_id)
    ).first()
    if row is None or row.rollout_id is None or row.scored_at is not None:
        return None
    return row.scoring_error or "scoring has not finished"


def send_batch_job(campaign_id: int, wave_id: int, batch: int) -> dict[str, Any]:
    rt = runtime.current()
    with rt.session() as session:
        waiting = _needs_scoring(session, wave_id)
    if waiting is not None:  # retried by rq; resume_open_waves re-queues the scoring first
        raise WaveNotScored(f"wave {wave_id} waits for its recommendations: {waiting}")
    outcome = ride_out_outages(
        lambda: send_batch(rt, campaign_id, wave_id, batch), f"batch {wave_id}/{batch}"
    )
    if outcome.retry_in:  # the throttle holds rows back for a while: come back then, off rq's retry count
        later = queues.queue(rt, queues.SENDING).enqueue_in(
            timedelta(seconds=outcome.retry_in),
            send_batch_job,
            campaign_id,
            wave_id,
            batch,
            job_id=f"send-{campaign_id}-{wave_id}-{batch}-at-{int(time.time() + outcome.retry_in)}",
            retry=SEND_RETRY,
        )
        # resume_open_waves looks here before re-enqueueing a batch whose first job has finished
        rt.redis.set(_later_key(wave_id, batch), later.id, ex=int(outcome.retry_in) + 3600)
    signals.record_batch(outcome)
    if outcome.wave_finished:
        evaluate_after_wave(rt, campaign_id, wave_id)
    return asdict(outcome)


def _later_key(wave_id: int, batch: int) -> str:
    return f"mailramp:batch-later:{wave_id}:{batch}"


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
    from campaigns.decisions.evaluation import run_evaluation

    with rt.session() as session:
        campaign = session.get(Campaign, campaign_id)
        rollout_id = campaign.rollout_id if campaign else None
        # a flow step's waves are a few contacts every tick: the periodic evaluator judges its rollout
        flow_step = campaign is not None and campaign.kind == "flow_step"
    if rollout_id is not None and not flow_step:
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
    with rt.session() as session:
        wave_ids = list(session.scalars(sa.select(Wave.id).where(Wave.status == "sending")))
        unscored = {w for w in wave_ids if _needs_scoring(session, w) is not None}
        todo = [b for wave_id in wave_ids for b in open_batches(session, wave_id)]
    rescored = 0
    for wave_id in unscored:  # its batches wait on the scoring job: queue both unless it is live
        if job_is_live(rt, _fetch(rt, f"score-{wave_id}")):
            continue
        batches = [b for b in todo if b.wave_id == wave_id]
        enqueue_batches(rt, batches, score_first=True)
        rescored += len(batches)
    todo = [b for b in todo if b.wave_id not in unscored]
    resumed = []
    sending = queues.queue(rt, queues.SENDING)
    waiting = set(sending.get_job_ids())  # read once for every batch below, not scanned per batch
    for b in todo:
        later = rt.redis.get(_later_key(b.wave_id, b.batch))  # re-enqueued by the throttle
        if later is not None and job_is_live(rt, _fetch(rt, later.decode())):
            continue
        job = _fetch(rt, b.job_id)
        in_sending = job is not None and job.origin == sending.name
        if job_is_live(rt, job, waiting if in_sending else None) and not (
            job is not None and _abandoned(rt, job, b)
        ):
            continue
        if job is not None:  # taken off its queue and never started: rq's cleanup must not fail it later
            rt.redis.lrem(Queue(job.origin, connection=rt.redis).intermediate_queue_key, 0, job.id)
        resumed.append(b)
    enqueue_batches(rt, resumed)
    return len(resumed) + rescored


def _fetch(rt: Runtime, job_id: str) -> Job | None:
    """A job by id, whatever its queue (Queue.fetch_job answers None for another queue's job)."""
    try:
        return Job.fetch(job_id, connection=rt.redis)
    except NoSuchJobError:
        return None


def _abandoned(rt: Runtime, job: Job, b: PlannedBatch) -> bool:
    """A batch job whose worker looks alive but whose host died: rq keeps a worker's record for the
    job's timeout, while the batch lock it renews after every chunk lapses after LOCK_SECONDS. A job
    started longer ago than that without its lock is taken over (the lock and the ledger still
    make a second sender harmless)."""
    from campaigns.sending.batch_lock import LOCK_SECONDS, lock_name

    started = job.started_at
    if started is None:
        return False
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    if (datetime.now(UTC) - started).total_seconds() < LOCK_SECONDS + 30:
        return False
    return not rt.redis.exists(lock_name(b.wave_id, b.batch))


def job_is_live(rt: Runtime, job: Job | None, queued: set[str] | None = None) -> bool:
    """Queued or waiting to run, or started by a worker that is still alive. `queued`: the job ids
    of the job's queue when the caller has read them already."""
    if job is None:
        return False
    status = job.get_status(refresh=True)
    if status in ("deferred", "scheduled"):
        return True
    if status == "queued":
        return job.id in queued if queued is not None else _in_queue(rt, job)
    return status == "started" and _worker_alive(rt, job.worker_name)


def _in_queue(rt: Runtime, job: Job) -> bool:
    """Whether a job whose status says queued is still in its queue. A worker takes a job off the
    queue (into rq's intermediate list) before it marks it started; a worker killed, or cut from
    Redis, in between leaves a job that says queued and that no worker will take. rq fails such a
    job only at its maintenance, ten to twenty minutes later, so resume does not wait for that:
    the batch lock and the ledger make a second job for the same batch harmless."""
    key = Queue(job.origin, connection=rt.redis).key
    try:
        return rt.redis.lpos(key, job.id) is not None
    except ResponseError:  # Redis older than 6.0.6: no LPOS
        return job.id.encode() in rt.redis.lrange(key, 0, -1)


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


def demo_story_replaying(rt: Runtime) -> bool:
    """Is the demo's story still waiting for its worker or replaying? (The dashboard says so.)"""
    try:
        job = _fetch(rt, DEMO_STORY_JOB)
        return job is not None and job.get_status(refresh=True) in (
            "queued",
            "started",
            "deferred",
            "scheduled",
        )
    except RedisError:
        return False


DEMO_STORY_JOB = "demo-story"


def enqueue_demo_story(rt: Runtime) -> str:
    # on the slow queue, behind the first training it uses
    # by name: the story replays a flow through the scheduler, which enqueues through this module
    job = queues.queue(rt, queues.TRAINING).enqueue(
        "campaigns.demo.story.demo_story_job", job_id=DEMO_STORY_JOB, job_timeout=1800
    )
    return str(job.id)
