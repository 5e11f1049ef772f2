"""One sender per batch; a lock left by a dead process on this host is taken over at once."""

from __future__ import annotations

import subprocess
import sys

from redis import Redis

from campaigns.sending.batch_lock import release, take_batch_lock
from campaigns.sending.liveness import HOST


def test_a_live_holder_keeps_the_batch(redis: Redis) -> None:
    first = take_batch_lock(redis, 1, 0)
    assert first is not None
    assert take_batch_lock(redis, 1, 0) is None  # this very process holds it: alive
    assert take_batch_lock(redis, 1, 1) is not None  # another batch is free
    release(first)
    assert take_batch_lock(redis, 1, 0) is not None


def test_a_dead_holder_on_this_host_is_taken_over(redis: Redis) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    redis.set("mailramp:lock:batch:2:0", f"{HOST}|{dead.stdout.strip()}|abcd1234", ex=120)
    assert take_batch_lock(redis, 2, 0) is not None


def test_a_holder_on_another_host_is_waited_for(redis: Redis) -> None:
    redis.set("mailramp:lock:batch:3:0", "some-other-host|1|abcd1234", ex=120)
    assert take_batch_lock(redis, 3, 0) is None


def test_a_lock_this_process_could_not_release_is_taken_back_when_redis_returns(redis: Redis) -> None:
    """Redis went away mid-batch: the release failed, the job runs the batch again in this process."""
    from redis.exceptions import RedisError

    from tests.conftest import free_port

    lock = take_batch_lock(redis, 3, 0)
    assert lock is not None
    lock.redis = Redis(port=free_port(), socket_connect_timeout=0.5)  # as if Redis were down
    try:
        release(lock)
        raise AssertionError("the release should have failed")
    except RedisError:
        pass
    assert take_batch_lock(redis, 3, 0) is not None  # taken back, though this process is alive
    assert take_batch_lock(redis, 3, 1) is not None
    assert take_batch_lock(redis, 3, 1) is None  # an ordinary live holder still keeps its batch
