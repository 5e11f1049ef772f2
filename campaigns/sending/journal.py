"""The send journal: a Redis list per batch, appended right after the SMTP server answers.

The ledger moves rows `queued -> sending` before a chunk goes out and `-> sent | failed` after it, in
two commits. If the worker dies in between, the journal still says which of the `sending` rows the
server had accepted, so the resumed batch marks them sent instead of sending them again. The only
message that can go out twice is one accepted in the instant between the server's reply and the
append below (one Redis round trip).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from campaigns.sending.delivery import DeliveryResult

JOURNAL_TTL_SECONDS = 7 * 24 * 3600


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
    """Appends on one dedicated connection without waiting for each reply (Redis pipelining).

    The command is written to the socket before `append` returns, and bytes written to a socket
    reach Redis even if this process is killed right after, so durability is that of `rpush`; the
    replies are read (and errors raised) at `flush`, once per chunk.
    """

    def __init__(self, redis: Redis, key: str) -> None:
        self.pool = redis.connection_pool
        self.connection = self.pool.get_connection()
        self.key = key
        self.unread = 0

    def append(self, result: DeliveryResult) -> None:
        self.connection.send_command("RPUSH", self.key, _line(result))
        self.unread += 1

    def flush(self) -> None:
        while self.unread:
            self.connection.read_response()
            self.unread -= 1

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pool.release(self.connection)
