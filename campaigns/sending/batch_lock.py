"""One sender per batch: a Redis lock whose token names the holder (host, pid).

A lock left by a killed process on this host is taken over at once; one left on another host expires
after LOCK_SECONDS, which the holder renews after every chunk while it is alive. A lock this process
could not release because Redis was down (the job then runs the batch again) is its own to take back.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import LockError, RedisError, WatchError
from redis.lock import Lock

from campaigns.sending.liveness import holder_is_dead, holder_token

log = logging.getLogger(__name__)
LOCK_SECONDS = 120
_UNRELEASED: set[str] = set()  # tokens of locks this process failed to release (Redis unreachable)


def lock_name(wave_id: int, batch: int) -> str:
    return f"mailramp:lock:batch:{wave_id}:{batch}"


def take_batch_lock(redis: Redis, wave_id: int, batch: int) -> Lock | None:
    """One sender per batch. A lock left by a killed process on this host is taken over at once;
    one left elsewhere expires after LOCK_SECONDS (renewed after every chunk while alive)."""
    name = lock_name(wave_id, batch)
    lock = redis.lock(name, timeout=LOCK_SECONDS, blocking=False)
    if lock.acquire(token=holder_token()):
        return lock
    holder = redis.get(name)
    if holder is not None and (holder_is_dead(holder.decode()) or holder.decode() in _UNRELEASED):
        with redis.pipeline() as pipe:
            try:
                pipe.watch(name)
                if pipe.get(name) == holder:
                    pipe.multi()
                    pipe.delete(name)
                    pipe.execute()
            except WatchError:
                return None
        if lock.acquire(token=holder_token()):
            return lock
    return None


def release(lock: Lock) -> None:
    token = lock.local.token
    try:
        lock.release()
    except LockError:
        log.warning("batch lock %s expired before release", lock.name)
    except RedisError:
        if token is not None:
            _UNRELEASED.add(token.decode() if isinstance(token, bytes) else str(token))
        raise


def renew(lock: Lock) -> None:
    lock.extend(LOCK_SECONDS, replace_ttl=True)
