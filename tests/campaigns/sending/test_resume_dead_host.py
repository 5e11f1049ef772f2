"""A worker host that dies whole leaves rq's record of its worker (kept for the job's timeout) and a
started job; the batch lock it renewed after every chunk lapses. Resume takes such a batch over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Worker
from rq.job import JobStatus
from sqlalchemy.orm import Session

from campaigns.jobs import job_is_live, resume_open_waves, start_wave
from campaigns.ops import queues
from campaigns.runtime import Runtime
from campaigns.sending.batch_lock import LOCK_SECONDS, lock_name
from tests.factories import add_campaign, add_contacts, add_template


def test_a_batch_whose_host_died_is_taken_over_once_its_lock_lapsed(app: Any, session: Session) -> None:
    rt: Runtime = app.extensions["mailramp"]
    add_contacts(session, 5)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    q = queues.queue(rt, queues.SENDING)
    job = q.fetch_job(f"send-{campaign.id}-{wave['wave_id']}-0")
    assert job is not None
    worker = Worker([q], connection=rt.redis, name="worker-on-a-dead-host")
    worker.register_birth()  # its record outlives the host, as rq keeps it for the job's timeout
    q.remove(job)
    job.set_status(JobStatus.STARTED)
    job.worker_name = worker.name
    job.started_at = datetime.now(UTC) - timedelta(seconds=LOCK_SECONDS + 60)
    job.save()

    rt.redis.set(lock_name(wave["wave_id"], 0), "other-host:1", ex=LOCK_SECONDS)
    assert resume_open_waves(rt) == 0  # the lock is still renewed: its sender is alive
    rt.redis.delete(lock_name(wave["wave_id"], 0))
    assert resume_open_waves(rt) == 1  # lapsed: the batch is queued again
    assert q.fetch_job(job.id).get_status(refresh=True) == "queued"  # type: ignore[union-attr]
    worker.register_death()


def test_a_batch_taken_off_its_queue_by_a_worker_that_died_before_starting_it_is_queued_again(
    app: Any, session: Session
) -> None:
    """rq moves a job from its queue to an intermediate list, then marks it started. A worker killed
    (or cut from Redis) in between leaves the job saying "queued" in no queue: nothing would run it
    until rq's maintenance fails it, ten to twenty minutes later."""
    rt: Runtime = app.extensions["mailramp"]
    add_contacts(session, 5)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    q = queues.queue(rt, queues.SENDING)
    job_id = f"send-{campaign.id}-{wave['wave_id']}-0"
    assert resume_open_waves(rt) == 0  # queued, in its queue: live
    assert rt.redis.lmove(q.key, q.intermediate_queue_key, "LEFT", "RIGHT") == job_id.encode()  # dequeued
    assert q.fetch_job(job_id).get_status(refresh=True) == "queued"  # type: ignore[union-attr]
    assert job_id not in q.job_ids
    assert not job_is_live(rt, q.fetch_job(job_id))  # read on its own (the periodic scheduler's way)
    assert resume_open_waves(rt) == 1
    assert job_id in q.job_ids  # back in its queue, where a worker will take it
    assert q.intermediate_queue.get_job_ids() == []  # so rq's maintenance will not fail it later
    assert resume_open_waves(rt) == 0
