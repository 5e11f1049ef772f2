"""What the engine needs from its host process: a session factory, a Redis connection, settings.

The web app and the worker build one `Runtime` from configuration and install it; rq job functions
look it up with `current()`. It is passed explicitly everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from models.db import session_scope

if TYPE_CHECKING:
    from campaigns.blobstore import BlobStore


@dataclass(frozen=True)
class Settings:
    secret_key: str
    base_url: str = "http://127.0.0.1:5000"
    smtp_url: str = "smtp://127.0.0.1:8025"
    instance_path: Path = field(default_factory=lambda: Path("instance"))
    queue_name: str = "mailramp"
    batch_size: int = 1000
    # re-check the kill switch every this many messages inside a batch
    kill_check_every: int = 200
    demo_data_path: str | None = None
    # retention windows in days (0: keep forever); see campaigns.privacy.retention
    retention_events_days: int = 365
    retention_sends_days: int = 730
    # limits (README, configuration; app.config holds the defaults too)
    import_max_bytes: int = 512 * 1024 * 1024  # decompressed size of one import file
    import_max_rows: int = 2_000_000
    template_max_bytes: int = 256 * 1024  # each part of a template
    template_max_output: int = 2 * 1024 * 1024  # characters of one render, and of any one value in it
    template_render_seconds: float = 2.0
    webhook_allow_private: bool = False  # webhooks may target loopback, private and link-local addresses
    # deliverability (README "Deliverability"): VERP return path, soft-bounce policy
    bounce_domain: str = ""  # empty: the envelope sender is the campaign's From address
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 30
    # per-domain-group limits, hourly cap, warm-up (campaigns.sending.throttling); None: the defaults
    throttle: Any = None
    smtp_connections: int = 4  # SMTP connections per worker process
    # messages whose final dot may await its reply at once, across a worker's connections: what a
    # killed worker can send twice (campaigns.sending.journal); more only pays on distant servers
    smtp_dots_in_flight: int = 1
    # simulated recipients react to what the local outbox receives (never with a real SMTP server)
    simulated_recipients: bool = False
    # where model artifacts and uploads waiting for a worker are kept: "database" or "file:///shared"
    blob_store: str = "database"


@dataclass
class Runtime:
    session_factory: sessionmaker[Session]
    redis: Redis
    settings: Settings

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.session_factory) as session:
            yield session

    def blobs(self) -> BlobStore:
        """The store every host reads (model artifacts, uploads waiting for a worker)."""
        from campaigns.blobstore import open_store

        return open_store(self.settings.blob_store, self.session_factory)


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    from campaigns.privacy import audit

    global _current
    _current = runtime
    audit.install(runtime.settings.secret_key)


_DEFAULTS = Settings(secret_key="")


def current_settings() -> Settings:
    """The installed runtime's settings, or the defaults (engine code used without an app)."""
    return _current.settings if _current is not None else _DEFAULTS


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no mailramp runtime installed: build the app (app.create_app) first")
    return _current
