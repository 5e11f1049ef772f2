"""Helpers shared by the benchmarks: an app on a scratch database and Redis, and a JSON last line."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
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


def reference_loop_ms(runs: int = 5) -> float:
    """How fast this machine runs plain Python right now: the median time of a fixed loop (string
    formatting, dict and list work, as the send path does), in milliseconds. Machines of the same
    kind differ by 2-3x here, and one machine by a third from minute to minute; absolute figures are
    read next to it, ratios measured in the same run do not need it."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        seen: dict[str, int] = {}
        out = []
        for i in range(200_000):
            key = f"person{i % 5000}@example.com"
            seen[key] = seen.get(key, 0) + 1
            out.append(key.upper())
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object, for comparing runs by machine, with the
    machine's reference loop measured as the run ends (see `reference_loop_ms`)."""
    reference = reference_loop_ms()
    print(f"reference loop (plain Python, this machine now): {reference} ms")
    print(json.dumps({**figures, "reference_loop_ms": reference}, sort_keys=True))
