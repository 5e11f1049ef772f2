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
