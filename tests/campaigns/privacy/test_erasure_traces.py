"""After erasing a contact that bounced and complained, no trace of its address or its external id is
left: not in a dump of the database, not in Redis (keys, values, and the append-only file once
rewritten), not in the instance folder, not in the log at INFO. Before, the person-data export holds
the bounce log. Redis here is a private redis-server with `appendonly yes` (tests/faults/services)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.runtime import Runtime
from campaigns.sending import bounces, inbound
from models import Bounce, Contact, Send
from tests.campaigns.sending.sink import RecordingSink, running
from tests.campaigns.sending.test_deliverability import send_wave
from tests.factories import add_campaign, add_template
from tests.faults.services import RedisServer, wait_until

EMAIL = "erase.me@example.com"
EXTERNAL = "CRM-ERASE-4711"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-aof"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> str:
    """The app of this module uses the private, append-only Redis."""
    return redis_server.url


@pytest.fixture()
def sink(app: Any) -> Iterator[RecordingSink]:
    with running(RecordingSink()) as s:
        yield s


@pytest.fixture()
def rt(app: Any, sink: RecordingSink) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    runtime.settings = dataclasses.replace(runtime.settings, smtp_url=sink.url)
    return runtime


def database_dump(session: Session) -> str:
    """Every row of every table, as text."""
    engine = session.get_bind()
    tables = sa.MetaData()
    tables.reflect(bind=engine)
    lines = []
    with engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(sa.select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines).lower()


def redis_dump(redis: Redis) -> bytes:
    out = []
    for key in redis.scan_iter(count=1000):
        out.append(key)
        kind = redis.type(key)
        if kind == b"string":
            out.append(redis.get(key) or b"")
        elif kind == b"list":
            out += redis.lrange(key, 0, -1)
        elif kind == b"hash":
            out += [k + b"=" + v for k, v in redis.hgetall(key).items()]
        elif kind == b"set":
            out += list(redis.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            out += [
                json.dumps({k.decode(): v.decode() for k, v in f.items()}).encode()
                for _, f in redis.xrange(key)
            ]
    return b"\n".join(out).lower()


def folder_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()).lower()


def traces(blob: str | bytes) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [needle for needle in (EMAIL, EXTERNAL.lower(), "erase.me") if needle in text.lower()]


def test_an_erased_contact_that_bounced_and_complained_leaves_no_trace(
    app: Any,
    rt: Runtime,
    session: Session,
    sink: RecordingSink,
    api: Any,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    session.add(Contact(email=EMAIL, name="Erase Me", country="GB", external_id=EXTERNAL, attributes={}))
    session.add(Contact(email="keep@example.com", name="Keep", country="GB", attributes={}))
    session.commit()
    contact_id = session.scalar(sa.select(Contact.id).where(Contact.email == EMAIL))
    send_wave(rt, session, add_campaign(session, add_template(session).id).id)
    send_id = session.scalar(sa.select(Send.id).where(Send.contact_id == contact_id))
    assert send_id is not None and {r.rcpt for r in sink.received} == {EMAIL, "keep@example.com"}

    # A complaint (ARF) and a late bounce (a DSN quoting the address) come back for that send.
    reports = [
        inbound.InboundReport(bounces.COMPLAINT, "arf", EMAIL, f"ARF abuse from {EMAIL}"),
        inbound.InboundReport(bounces.HARD, "dsn", EMAIL, f"5.1.1 smtp; 550 5.1.1 <{EMAIL}>: user unknown"),
    ]
    assert inbound.record(rt, reports, send_id) == 2
    ingest(rt)
    session.expire_all()
    assert {b.kind for b in session.scalars(sa.select(Bounce).where(Bounce.email == EMAIL))} == {
        "complaint",
        "hard",
    }

    # The person-data export holds the bounce log.
    exported = api.get(f"/api/v1/contacts/{contact_id}/export")
    assert exported.status_code == 200
    assert {b["kind"] for b in exported.json["bounces"]} == {"complaint", "hard"}

    redis = Redis.from_url(redis_server.url)
    redis.xadd("mailramp:scratch", {"e": json.dumps({"note": "unrelated"})})  # the AOF has content
    erased = api.post(f"/api/v1/contacts/{contact_id}/erase", json={"reason": "the person asked"})
    assert erased.status_code == 200, erased.json
    wait_until(
        lambda: (
            redis.info("persistence")["aof_rewrite_in_progress"] == 0
            and redis.info("persistence")["aof_rewrite_scheduled"] == 0
            and redis.info("persistence")["aof_last_bgrewrite_status"] == "ok"
        ),
        30,
        "the append-only file's rewrite",
    )

    session.expire_all()
    dump = database_dump(session)
    assert "keep@example.com" in dump  # the dump does read the data
    assert traces(dump) == []
    kept = list(session.scalars(sa.select(Bounce)))
    assert len(kept) == 2 and all(b.email.startswith("sha256:") and "erase" not in b.detail for b in kept)
    assert traces(redis_dump(redis)) == []
    assert traces(folder_bytes(redis_server.folder)) == [], "the append-only file still holds the address"
    assert traces(folder_bytes(Path(app.instance_path))) == []
    product_log = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] in ("campaigns", "app", "mailramp", "worker")
    )
    assert traces(product_log) == []


def test_the_local_outbox_logs_no_address_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """aiosmtpd logs each command line (`RCPT TO:<address>`) at INFO; the product's servers keep
    its logger at WARNING."""
    import smtplib

    from campaigns.sending.outbox import start_outbox
    from tests.conftest import free_port

    caplog.set_level(logging.INFO)
    port = free_port()
    controller = start_outbox(tmp_path / "outbox", port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("shop@example.com", [EMAIL], b"Subject: hi\r\n\r\nhello\r\n")
    finally:
        controller.stop()
    assert traces("\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)) == []
