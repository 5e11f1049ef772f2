"""Is Redis or the database unreachable right now? For the UI's outage banner and its 503 page.

Checked at most every CHECK_SECONDS per process, on a Redis connection that does not retry (the
runtime's own connection retries for seconds, which is right for jobs and wrong for a page).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, url_for
from redis import ConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from app.extensions import get_runtime

CHECK_SECONDS = 3.0
REDIS_DOWN = "Redis is unreachable: sending, ingest and the queues wait; tracking links keep working."
DATABASE_DOWN = "The database is unreachable: pages cannot load data; work resumes by itself when it returns."


class _Probe:
    def __init__(self, redis: Redis, engine: sa.Engine) -> None:
        kwargs = dict(redis.connection_pool.connection_kwargs)
        kwargs.update(socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))
        pool = ConnectionPool(connection_class=redis.connection_pool.connection_class, **kwargs)
        self.redis = Redis(connection_pool=pool)
        self.engine = engine
        self.checked_at = 0.0
        self.problems: list[str] = []

    def outages(self) -> list[str]:
        now = time.monotonic()
        if now - self.checked_at < CHECK_SECONDS:
            return self.problems
        problems = []
        try:
            self.redis.ping()
        except RedisError:
            problems.append(REDIS_DOWN)
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            problems.append(DATABASE_DOWN)
        self.problems, self.checked_at = problems, now
        return problems


def outages() -> list[str]:
    probe: _Probe | None = current_app.extensions.get("mailramp_probe")
    if probe is None:
        rt = get_runtime()
        probe = _Probe(rt.redis, rt.session_factory.kw["bind"])
        current_app.extensions["mailramp_probe"] = probe
    return probe.outages()


def outage_page(_exc: Exception) -> tuple[str, int, dict[str, str]]:
    """A page that needs neither Redis nor the database: rendered without the context processors
    (they load the user and the navigation from the database)."""
    problems = outages() or [DATABASE_DOWN]
    page = current_app.jinja_env.get_template("ui/outage.html").render(problems=problems, url_for=url_for)
    return page, 503, {"Retry-After": "10"}


def init_blueprint(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(DBAPIError, outage_page)
    blueprint.register_error_handler(RedisError, outage_page)

    @blueprint.app_context_processor
    def _outages() -> dict[str, Any]:
        return {"outages": outages}
