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

import select
import socket
import ssl
from dataclasses import dataclass
from typing import NoReturn

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
    outstanding (`ready_for_next`). Replies already waiting are read without blocking.

    The connection is redis-py's (connected, authenticated, its database selected), but after that
    only this writer talks on its socket: each command packed here, each reply (`:<length>` to RPUSH,
    or `-<error>`) read here, one `recv` for every reply already arrived rather than redis-py's
    parser per reply. Failures are redis-py's: an error reply is a ResponseError, a broken or timed
    out connection a ConnectionError or TimeoutError; after any of them the connection is dropped,
    never reused (and the batch is run again from the ledger and the journal)."""

    def __init__(self, redis: Redis, key: str, window: int = WINDOW) -> None:
        self.pool = redis.connection_pool
        self.connection = self.pool.get_connection()
        self.key = key
        self.window = window
        encoded = key.encode()
        self._rpush = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%b\r\n" % (len(encoded), encoded)
        self.unread = 0
        self._replies = b""  # bytes read but not yet a whole reply
        self._poller: select.poll | None = None

    def append(self, result: DeliveryResult) -> None:
        line = _line(result)  # RPUSH key line, packed as RESP here (redis-py's packer costs more)
        sock = self._socket()
        try:
            sock.sendall(b"%b$%d\r\n%b\r\n" % (self._rpush, len(line), line))
        except OSError as exc:
            self._broken(exc, "writing to")
        self.unread += 1
        self._read(block=False)

    def ready_for_next(self) -> None:
        """Block until at most `window - 1` appends are unacknowledged (call before each delivery)."""
        while self.unread >= self.window:
            self._read(block=True)

    def flush(self) -> None:
        while self.unread:
            self._read(block=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pool.release(self.connection)

    def _socket(self) -> socket.socket:
        sock = self.connection._sock
        if sock is None:  # dropped after an error: its appends' fate is unknown
            raise RedisConnectionError("the journal's Redis connection was lost")
        return sock

    def _read(self, block: bool) -> None:
        """Read what has arrived (with `block`, wait for at least one byte) and count the replies."""
        sock = self._socket()
        try:
            # look before reading: a socket with a timeout waits inside recv, whatever its flags
            if not block and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                if self._poller is None:
                    self._poller = select.poll()
                    self._poller.register(sock, select.POLLIN)
                if not self._poller.poll(0):
                    return
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._broken(exc, "reading from")
        if not data:
            self._broken(None, "reading from")
        buffer = self._replies + data
        end = buffer.rfind(b"\r\n") + 2
        if end < 2:  # not one whole reply yet
            self._replies = buffer
            return
        whole, self._replies = buffer[:end], buffer[end:]
        replies = whole.split(b"\r\n")[:-1]
        self.unread -= len(replies)
        for reply in replies:
            if not reply.startswith(b":"):  # RPUSH answers `:<length>`; anything else is an error
                self.connection.disconnect()  # and what follows it is not known: never reused
                raise ResponseError(reply.lstrip(b"-").decode(errors="replace"))

    def _broken(self, exc: OSError | None, doing: str) -> NoReturn:
        self.connection.disconnect()
        if isinstance(exc, TimeoutError):
            raise RedisTimeoutError(f"Timeout {doing} the journal's Redis connection") from exc
        raise RedisConnectionError(
            f"Error {doing} the journal's Redis connection: {exc or 'closed'}"
        ) from exc
