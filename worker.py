"""rq worker entry: build the app, preload, start the worker pool and the cron scheduler.

python worker.py                 # a pool of workers (MAILRAMP_WORKERS, default 2) + cron
python worker.py --burst         # drain the queue and exit (tests, one-off runs)
python worker.py --cron-only     # only the periodic-job scheduler
python worker.py --metrics-port 9100   # also serve this host's counters to Prometheus
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.worker_pool import WorkerPool
from sqlalchemy.orm import configure_mappers

log = logging.getLogger("mailramp.worker")


class MailrampWorker(SimpleWorker):
    """Runs jobs in the worker process itself (no fork per job): the compiled templates, the engine's
    connection pool and loaded models are reused across jobs. Each worker process starts with its
    own database connections (a pool inherited through fork is discarded)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from campaigns import runtime

        runtime.current().session_factory.kw["bind"].dispose(close=False)
        from campaigns.signals import record_job_failure

        self.push_exc_handler(record_job_failure)  # counted for /metrics


def build() -> Any:
    from app import create_app
    from campaigns.privacy import audit

    app = create_app()
    configure_mappers()  # before forking, as Redash does
    audit.set_process_actor(audit.Actor("worker", "worker"))  # what jobs change, unless they say who
    return app


def recover(rt: Any) -> int:
    """Re-enqueue batches whose worker died, before taking new work."""
    from campaigns.jobs import resume_open_waves

    return resume_open_waves(rt)


def run_cron(rt: Any) -> None:
    from campaigns.periodic import periodic_jobs

    cron = CronScheduler(connection=rt.redis, name=f"mailramp-cron-{os.getpid()}")
    for job in periodic_jobs():
        cron.register(
            job.func,
            queue_name=rt.settings.queue_name,
            interval=job.interval,
            cron=job.cron,
            job_timeout=job.timeout,
        )
    cron.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    parser.add_argument("--cron-only", action="store_true", help="run only the cron scheduler")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MAILRAMP_WORKERS", "2")))
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("MAILRAMP_METRICS_PORT", "0")),
        help="serve this host's Prometheus counters on this port (0: off)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = build()
    rt = app.extensions["mailramp"]
    if args.metrics_port:
        from campaigns.signals import serve

        serve(args.metrics_port)
    if args.cron_only:
        run_cron(rt)
        return 0
    with app.app_context():
        resumed = recover(rt)
        if resumed:
            log.info("re-enqueued %d batches left by a dead worker", resumed)
    if args.burst or args.workers <= 1:
        worker = MailrampWorker([rt.settings.queue_name], connection=rt.redis)
        worker.work(burst=args.burst, with_scheduler=True)
        return 0
    pool = WorkerPool(
        [rt.settings.queue_name], connection=rt.redis, num_workers=args.workers, worker_class=MailrampWorker
    )
    pool.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
