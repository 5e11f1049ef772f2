"""The journal writer reads RPUSH's replies itself: whole replies counted however they arrive, an
error reply or a lost connection raised as redis-py raises them (so `ride_out_outages` runs the batch
again), and the connection never reused after one."""

from __future__ import annotations

import socket
import ssl

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.journal import JournalWriter, SendJournal


def test_appends_land_in_order_and_every_reply_is_counted(redis: Redis) -> None:
    journal = SendJournal(redis, wave_id=3, batch=1)
    writer = journal.writer()
    try:
        for send_id in range(1, 301):
            writer.ready_for_next()
            writer.append(
                DeliveryResult(send_id, accepted=send_id % 7 != 0, error="" if send_id % 7 else "550 no")
            )
        writer.flush()
        assert writer.unread == 0 and writer._replies == b""
    finally:
        writer.close()
    entries = journal.entries()
    assert [e.send_id for e in entries] == list(range(1, 301))
    assert [e.send_id for e in entries if not e.accepted] == list(range(7, 301, 7))
    assert redis.ping()  # the connection went back to the pool in a usable state


def test_replies_split_across_reads_are_counted_once_whole(redis: Redis) -> None:
    writer = SendJournal(redis, wave_id=3, batch=2).writer()
    real = writer.connection._sock
    ours, server = socket.socketpair()
    try:
        writer.connection._sock = ours
        writer.unread = 4
        counted = []
        for piece in (b":", b"1\r", b"\n:2", b"\r\n:13", b"\r", b"\n:14\r\n"):
            server.sendall(piece)
            writer._read(block=False)
            counted.append(writer.unread)
        writer._read(block=False)  # nothing more: returns at once
        assert counted == [4, 4, 3, 2, 2, 0]
        assert writer.unread == 0 and writer._replies == b""
    finally:
        writer.connection._sock = real
        writer.close()
        ours.close()
        server.close()


def test_an_error_reply_is_a_response_error_and_the_connection_is_dropped(redis: Redis) -> None:
    journal = SendJournal(redis, wave_id=3, batch=3)
    redis.set(journal.key, "not a list")  # RPUSH answers WRONGTYPE
    writer = journal.writer()
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):  # where the reply is read: now or later
            writer.append(DeliveryResult(1, accepted=True))
            writer.flush()
        assert writer.connection._sock is None
        with pytest.raises(RedisConnectionError):
            writer.append(DeliveryResult(2, accepted=True))
    finally:
        writer.pool.release(writer.connection)
    assert redis.get(journal.key) == b"not a list"


def test_a_lost_connection_is_a_redis_error(redis: Redis) -> None:
    writer: JournalWriter = SendJournal(redis, wave_id=3, batch=4).writer()
    try:
        writer.append(DeliveryResult(1, accepted=True))
        writer.flush()
        writer.connection._sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(RedisError):  # what jobs.ride_out_outages waits out and runs again
            writer.append(DeliveryResult(2, accepted=True))
            writer.flush()
        assert writer.connection._sock is None
    finally:
        writer.pool.release(writer.connection)


class _FakeTls(ssl.SSLSocket):
    """Stands for a TLS connection to Redis (no MSG_DONTWAIT there): a plain socket underneath."""

    def __init__(
        self, inner: socket.socket
    ) -> None:  # the SSL layer is not set up: only what the writer calls
        self.inner = inner
        self.flags: list[int] = []

    def fileno(self) -> int:
        return self.inner.fileno()

    def pending(self) -> int:
        return 0

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on <class 'ssl.SSLSocket'>")
        return self.inner.recv(buflen)


def test_over_tls_replies_are_read_without_blocking_too(redis: Redis) -> None:
    writer = SendJournal(redis, wave_id=3, batch=5).writer()
    real = writer.connection._sock
    ours, server = socket.socketpair()
    try:
        writer.connection._sock = _FakeTls(ours)
        writer.unread = 2
        writer._read(block=False)  # nothing arrived: returns at once
        assert writer.unread == 2
        server.sendall(b":1\r\n:2\r\n")
        writer._read(block=False)
        assert writer.unread == 0
    finally:
        writer.connection._sock = real
        writer.close()
        ours.close()
        server.close()
