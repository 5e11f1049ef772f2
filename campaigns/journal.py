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

from campaigns.delivery import DeliveryResult

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
        line = f"{result.send_id}|{int(result.accepted)}|{int(result.permanent)}|{result.error}"
        self.redis.rpush(self.key, line.encode())

    def entries(self) -> list[JournalEntry]:
        out = []
        for raw in self.redis.lrange(self.key, 0, -1):
            send_id, accepted, permanent, error = raw.decode().split("|", 3)
            out.append(JournalEntry(int(send_id), accepted == "1", permanent == "1", error))
        return out

    def clear(self) -> None:
        """Only after the ledger commit that recorded these entries."""
        self.redis.delete(self.key)

    def touch(self) -> None:
        self.redis.expire(self.key, JOURNAL_TTL_SECONDS)
