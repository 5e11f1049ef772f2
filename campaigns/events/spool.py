"""The web process's durable buffer for tracking events Redis cannot take right now.

While Redis is unreachable, an event a recipient triggered (a click, an unsubscribe) is appended to a
file of this process under the instance folder and fsynced before the request is answered; the file
is drained into the Redis stream when Redis answers again, by this process or any other web process
of the host (a dead process's file included). It is the web process's own buffer, never something a
job needs. Each event carries its dedupe key, so an entry drained twice (a crash between the `XADD`
and the truncation) is stored once by ingest.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from redis import Redis

log = logging.getLogger(__name__)
DRAIN_EVERY_SECONDS = 2.0


class EventSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._next_look = 0.0

    def _own_file(self) -> Path:
        return self.directory / f"events-{os.getpid()}.ndjson"

    def append(self, fields: dict[str, str]) -> None:
        """Durable when it returns (written and fsynced); raises OSError when it cannot be."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # A leading newline keeps this line whole even after a line a crash cut short.
        line = ("\n" + json.dumps(fields, separators=(",", ":")) + "\n").encode()
        fd = os.open(self._own_file(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        self._next_look = 0.0

    def drain_if_due(self, redis: Redis, stream: str) -> int:
        """Cheap on the hot path: looks at the folder at most every DRAIN_EVERY_SECONDS."""
        now = time.monotonic()
        if now < self._next_look:
            return 0
        self._next_look = now + DRAIN_EVERY_SECONDS
        return self.drain(redis, stream)

    def drain(self, redis: Redis, stream: str) -> int:
        """Move every spooled event of this host's web processes into the stream; raises RedisError
        (leaving the files as they were) if Redis fails meanwhile."""
        if not self.directory.is_dir():
            return 0
        moved = 0
        for path in sorted(self.directory.glob("events-*.ndjson")):
            try:
                if path.stat().st_size == 0:
                    continue
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is appending, or another process is draining it
                entries = _read_lines(fd)
                if entries:
                    with redis.pipeline(transaction=False) as pipe:
                        for fields in entries:
                            pipe.xadd(stream, fields)
                        pipe.execute()
                os.ftruncate(fd, 0)
                os.fsync(fd)
                moved += len(entries)
            finally:
                os.close(fd)
        if moved:
            log.info("moved %d spooled tracking events into Redis", moved)
        return moved

    def pending(self) -> int:
        if not self.directory.is_dir():
            return 0
        total = 0
        for path in self.directory.glob("events-*.ndjson"):
            with open(path, "rb") as f:
                total += sum(1 for line in f if line.strip())
        return total


def _read_lines(fd: int) -> list[dict[str, Any]]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    out = []
    for line in b"".join(chunks).splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by a crash mid-write was never acknowledged
            log.warning("dropping a partial spool line (never acknowledged): %r", line[:80])
    return out
