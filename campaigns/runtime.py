"""What the engine needs from its host process: a session factory, a Redis connection, settings.

The web app and the worker build one `Runtime` from configuration and install it; rq job functions
look it up with `current()`. It is passed explicitly everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no mailramp runtime installed: build the app (app.create_app) first")
    return _current
