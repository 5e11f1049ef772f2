"""Signals for operators: Prometheus counters kept by the processes that do the work.

Counters live in each process (rq workers count the emails they send and the jobs that fail). With
`PROMETHEUS_MULTIPROC_DIR` set, prometheus-client writes them to files in that folder, so one scrape
of the web tier's `/metrics` (or of `worker.py --metrics-port`) adds up every gunicorn and rq worker
process of the host. Without it, each process counts for itself (fine for a single process).

The state of the whole installation (queue depths, ingest lag, events per arm, decisions) is not
counted here but read when scraped: see `campaigns.ops.signals_cluster`. Metrics are made on first use,
never at import time, so importing this module creates no file.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

PREFIX = "mailramp"
_lock = threading.Lock()


@cache
def _counters() -> dict[str, Counter]:
    from prometheus_client import Counter

    return {
        "sent": Counter(f"{PREFIX}_emails_sent", "Emails accepted by the SMTP server"),
        "failed": Counter(f"{PREFIX}_emails_failed", "Emails refused for good (the ledger row is failed)"),
        "deferred": Counter(f"{PREFIX}_emails_deferred", "Emails deferred by the server, retried later"),
        "skipped": Counter(f"{PREFIX}_emails_skipped", "Planned emails not sent (unsubscribed, suppressed)"),
        "job_failures": Counter(f"{PREFIX}_job_failures", "rq jobs that raised", ["job"]),
    }


def record_batch(outcome: Any) -> None:
    """Count one batch's results (a `BatchOutcome`: sent, failed, retry_later, skipped)."""
    counters = _counters()
    with _lock:
        counters["sent"].inc(max(int(getattr(outcome, "sent", 0)), 0))
        counters["failed"].inc(max(int(getattr(outcome, "failed", 0)), 0))
        counters["deferred"].inc(max(int(getattr(outcome, "retry_later", 0)), 0))
        counters["skipped"].inc(max(int(getattr(outcome, "skipped", 0)), 0))


def record_job_failure(job: Any, *exc_info: Any) -> bool:
    """An rq exception handler: count the failure by job function, then let rq go on handling it."""
    name = str(getattr(job, "func_name", "") or "unknown").rsplit(".", 1)[-1]
    _counters()["job_failures"].labels(job=name).inc()
    return True


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """The counters of every process of this host (multiprocess mode), or of this process alone."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = multiprocess_dir()
    if folder is None:
        _counters()  # so the families are listed even before anything happened
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return registry


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve this host's process counters on a port of its own (a worker host has no web tier)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=process_registry())
