"""Helpers shared by the benchmarks: an app on a scratch database and Redis, and a JSON last line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def scratch_app(workdir: Path, **config: Any) -> Any:
    """An app on DATABASE_URL/REDIS_URL when set, else a fresh SQLite file and embedded Redis."""
    from app import create_app
    from models import Base
    from models.db import make_engine

    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench",
        "BASE_URL": "http://bench.test",
        **config,
    }
    if os.environ.get("BENCH_REDIS_URL"):
        settings["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    return create_app(settings, instance_path=str(workdir / "instance"))


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mailramp-bench-"))


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object, for comparing runs by machine."""
    print(json.dumps(figures, sort_keys=True))
