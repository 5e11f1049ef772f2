"""The send journal: a Redis list per batch, appended right after the SMTP server answers.

The ledger moves rows `queued -> sending` before a chunk goes out and `-> sent | failed` after it, in
two commits. If the worker dies in between, the journal still says which of the `sending` rows the
server had accepted, so the resumed batch marks them sent instead of sending them again.

Durability is Redis's: with `appendonly yes` and `appendfsync always` (what the README asks of
production and what the embedded server and the fault suite run), a reply to `RPUSH` means the entry
is on disk. The writer pipelines its appends but never lets more than `WINDOW` of them go
unacknowledged before the next message is handed to the SMTP server, so what a failure can cost is
bounded: a worker's death repeats at most the message whose reply it was holding (its SMTP
transaction in flight); a Redis restart at most `WINDOW` unacknowledged appends plus that one.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from campaigns.sending.delivery import DeliveryResult

JOURNAL_TTL_SECONDS = 7 * 24 * 3600
WINDOW = 4  # appends allowed in flight (sent, reply not yet read) while the next message goes out


@dataclass(frozen=True)
class JournalEntry:
    send_id: int
    accepted: bool
    permanent: bool
    error: str


class SendJournal:
    def __init__(self, redis: Redis, wave_id: int, batch: int) -> None:
        self.redis = redis
        self.key = f"mailramp:journal:{wave_id}:{batch}"

    def append(self, result: DeliveryResult) -> None:
        self.redis.rpush(self.key, _line(result))

    def writer(self) -> JournalWriter:
        return JournalWriter(self.redis, self.key)

    def entries(self) -> list[JournalEntry]:
        out = []
        for raw in self.redis.lrange(self.key, 0, -1):
            send_id, accepted, permanent, error = raw.decode().split("|", 3)
            out.append(JournalEntry(int(send_id), accepted == "1", permanent == "1", error))
        return out

    def clear(self) -> None:
        """Only after the ledger commit that recorded these entries."""
        self.redis.delete(self.key)

    def drop_first(self, n: int) -> None:
        """Entries are appended in delivery order: drop the `n` a ledger commit has just recorded."""
        self.redis.ltrim(self.key, n, -1)

    def touch(self) -> None:
        self.redis.expire(self.key, JOURNAL_TTL_SECONDS)


def _line(result: DeliveryResult) -> bytes:
    return f"{result.send_id}|{int(result.accepted)}|{int(result.permanent)}|{result.error}".encode()


class JournalWriter:
    """Appends on one dedicated connection, pipelined: each append is written to the socket at once
    and its reply read later, but before the next message goes out at most `WINDOW` replies may be
    outstanding (`ready_for_next`). Replies already waiting are read without blocking."""

    def __init__(self, redis: Redis, key: str, window: int = WINDOW) -> None:
        self.pool = redis.connection_pool
        self.connection = self.pool.get_connection()
        self.key = key
        self.window = window
        encoded = key.encode()
        self._rpush = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%b\r\n" % (len(encoded), encoded)
        self.unread = 0

    def append(self, result: DeliveryResult) -> None:
        line = _line(result)  # RPUSH key line, packed as RESP here (redis-py's packer costs more)
        self.connection.send_packed_command(
            [b"%b$%d\r\n%b\r\n" % (self._rpush, len(line), line)], check_health=False
        )
        self.unread += 1
        while self.unread and self.connection.can_read(timeout=0):
            self._read_one()

    def ready_for_next(self) -> None:
        """Block until at most `window - 1` appends are unacknowledged (call before each delivery)."""
        while self.unread >= self.window:
            self._read_one()

    def _read_one(self) -> None:
        self.connection.read_response()
        self.unread -= 1

    def flush(self) -> None:
        while self.unread:
            self._read_one()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pool.release(self.connection)
