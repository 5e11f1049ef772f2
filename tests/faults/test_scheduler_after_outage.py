"""After a Redis outage, work due later (a throttled batch's next pass, a retry, a local-time batch)
runs soon after Redis returns. rq's scheduler process, which moves such jobs onto their queue, exits
on the outage's first Redis error and rq itself starts it again only at its maintenance pass (every
ten minutes); the worker's own watchdog (worker.MailrampWorker) starts it again within seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq import Queue

from app import migrate
from tests.faults.services import ROOT, RedisServer, redis_answers, wait_until

OUTAGE_SECONDS = 30
DUE_AFTER = timedelta(seconds=5)
DEADLINE_SECONDS = 120  # the promise: deferred work runs within 2 minutes of Redis returning


def schedulers(pool: psutil.Process) -> list[psutil.Process]:
    """rq's scheduler processes: children of the pool's worker processes."""
    found = []
    for worker in pool.children():
        try:
            found += [p for p in worker.children() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(600)
def test_a_job_due_later_runs_within_two_minutes_of_redis_returning(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    database = f"sqlite:///{tmp_path / 'mailramp.db'}"
    migrate.upgrade(database)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILRAMP_", "REDIS_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": database,
        "REDIS_URL": redis.url,
        "SMTP_URL": "smtp://127.0.0.1:9",
        "SECRET_KEY": "faults",
        "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONPATH": str(ROOT),
    }
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115 (closed below)
    pool = subprocess.Popen(
        [sys.executable, "worker.py", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        queue = Queue("mailramp:sending", connection=Redis.from_url(redis.url))
        first = queue.enqueue_in(DUE_AFTER, "os.getpid")
        wait_until(
            lambda: first.get_status(refresh=True) == "finished",
            120,
            "a job due in 5 s to run before the outage",
        )

        me = psutil.Process(pool.pid)
        redis.kill()
        went = time.monotonic()
        wait_until(lambda: not schedulers(me), 60, "rq's scheduler process to exit on the outage")
        time.sleep(
            max(OUTAGE_SECONDS - (time.monotonic() - went), 0)
        )  # the outage itself, not a wait on a state
        redis.start()
        assert redis_answers(redis.url)

        queue = Queue("mailramp:sending", connection=Redis.from_url(redis.url))
        later = queue.enqueue_in(DUE_AFTER, "os.getpid")
        wait_until(
            lambda: later.get_status(refresh=True) == "finished",
            DEADLINE_SECONDS,
            f"a job due {DUE_AFTER.seconds} s after Redis returned to run (rq's scheduler is not back)",
        )
    finally:
        pool.terminate()
        try:
            pool.wait(30)
        except subprocess.TimeoutExpired:
            pool.kill()
        log.close()
        redis.stop()
