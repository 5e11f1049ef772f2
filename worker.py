"""rq worker entry: build the app, preload, start the worker pool or the periodic-job scheduler.

python worker.py                 # a pool of workers (MAILRAMP_WORKERS, default 2)
python worker.py --burst         # drain every queue and exit (tests, one-off runs)
python worker.py --cron-only     # only the periodic-job scheduler
python worker.py --metrics-port 9100   # also serve this host's counters to Prometheus

The pool keeps at least one process that never takes imports or trainings (campaigns.ops.queues), so a
long training never delays a wave or ingest. A worker process that dies (a crash, a Redis or database
outage it could not ride out) is started again with backoff; SIGINT/SIGTERM stops the pool within
STOP_SECONDS (work cut short is resumed from the ledger and the journal).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from rq import SimpleWorker
from sqlalchemy.orm import configure_mappers

log = logging.getLogger("mailramp.worker")
STOP_SECONDS = 4.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 30.0  # a process that lived this long restarts its backoff from 1 s
SCHEDULER_CHECK_SECONDS = 5.0  # how often a worker looks whether rq's scheduler process is alive
KILLED_RESTART_SECONDS = 0.5  # a process killed from outside (OOM killer, operator) comes back at once


class MailrampWorker(SimpleWorker):
    """Runs jobs in the worker process itself (no fork per job): the compiled templates, the engine's
    connection pool and loaded models are reused across jobs. Each worker process starts with its
    own database connections (a pool inherited through fork is discarded)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from campaigns import runtime
        from campaigns.ops import queues

        kwargs.setdefault("job_class", queues.Job)  # jobs queued by an earlier version still run
        super().__init__(*args, **kwargs)

        runtime.current().session_factory.kw["bind"].dispose(close=False)
        from campaigns.ops.signals import record_job_failure

        self.push_exc_handler(record_job_failure)  # counted for /metrics
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()  # set by the first SIGTERM/SIGINT: the watchdog stands down

    def request_stop(self, signum: Any, frame: Any) -> None:
        self._stopping.set()
        super().request_stop(signum, frame)

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        super()._start_scheduler(*args, **kwargs)
        if self._watchdog is None and self.scheduler is not None:
            self._watchdog = threading.Thread(
                target=self._watch_scheduler, name="scheduler-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch_scheduler(self) -> None:
        """rq's scheduler process (it moves jobs due later, such as a throttled batch's next pass and
        retries, onto their queue) exits on any Redis error, and rq starts it again only at its
        maintenance pass, ten minutes later. Look every SCHEDULER_CHECK_SECONDS instead: once Redis
        answers again, take the scheduler lock back (or find another worker holds it) and start it."""
        while not self._stopping.wait(SCHEDULER_CHECK_SECONDS):
            scheduler = self.scheduler
            if scheduler is None or self._stop_requested:
                continue
            process = scheduler._process
            # alive, or stopped on request (exit 0: a stop of the pool signals it too): leave it
            if process is not None and (process.is_alive() or process.exitcode == 0):
                continue
            try:
                if scheduler.acquire_locks(auto_start=True):
                    log.info(
                        "rq's scheduler started again (pid %s)", getattr(scheduler._process, "pid", None)
                    )
            except Exception as exc:  # Redis still away: try again at the next look
                log.debug("rq's scheduler not started yet: %s", exc)
            if self._stopping.is_set() and scheduler._process is not None and scheduler._process.is_alive():
                self.stop_scheduler()  # started in the instant the stop came: stop it again

    def unsubscribe(self) -> None:
        from campaigns.ops import queues

        queues.quick_unsubscribe(self)


def build() -> Any:
    from app import create_app
    from campaigns.privacy import audit

    app = create_app()
    configure_mappers()  # before forking, as Redash does
    audit.set_process_actor(audit.Actor("worker", "worker"))  # what jobs change, unless they say who
    return app


def recover(rt: Any) -> int:
    """Re-enqueue batches whose worker died and fail interrupted imports and trainings, before taking
    new work. An outage here is not fatal: the periodic jobs do the same every minute."""
    from campaigns.jobs import resume_open_waves
    from campaigns.ops.recovery import recover_interrupted

    try:
        failed = recover_interrupted(rt)
        if any(failed.values()):
            log.info("interrupted work marked failed: %s", failed)
        return resume_open_waves(rt)
    except Exception:
        log.exception("recovery at start failed; the periodic recovery jobs will retry")
        return 0


def slots(prefix: str, workers: int) -> list[list[str]]:
    """Queue lists of the pool's processes: the last one also takes imports and trainings (after the
    short work), the others never do. A single process takes everything."""
    from campaigns.ops import queues

    if workers <= 1:
        return [queues.names(prefix)]
    return [queues.names(prefix, queues.FAST)] * (workers - 1) + [queues.names(prefix)]


def _serve(queue_names: list[str], burst: bool) -> None:
    from campaigns import runtime
    from campaigns.jobs import resume_open_waves

    rt = runtime.current()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    worker = MailrampWorker(queue_names, connection=rt.redis)
    try:  # a batch whose worker was just killed (likely this slot's previous process) goes on at once
        resume_open_waves(rt)
    except Exception:
        log.exception("could not look for interrupted batches; the periodic job will")
    worker.work(burst=burst, with_scheduler=True)


@dataclass
class _Slot:
    queue_names: list[str]
    process: BaseProcess | None = None
    started: float = 0.0
    backoff: float = 1.0
    restart_at: float = 0.0
    restarts: int = field(default=0)


class Pool:
    """Worker processes, each restarted with backoff when it dies, until stopped."""

    def __init__(self, queue_lists: list[list[str]]) -> None:
        self.slots = [_Slot(names) for names in queue_lists]
        self.stopping = threading.Event()
        self.context = multiprocessing.get_context("fork")

    def _start(self, slot: _Slot) -> None:
        slot.process = self.context.Process(target=_serve, args=(slot.queue_names, False), daemon=False)
        slot.process.start()
        slot.started = time.monotonic()

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for slot in self.slots:
            self._start(slot)
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is None or slot.process.is_alive():
                    continue
                if slot.restart_at == 0.0:
                    lived = now - slot.started
                    killed = (slot.process.exitcode or 0) < 0  # by a signal from outside: not a crash loop
                    if killed:
                        slot.backoff = KILLED_RESTART_SECONDS
                    elif lived > HEALTHY_AFTER_SECONDS:
                        slot.backoff = 1.0
                    else:
                        slot.backoff = min(slot.backoff * 2, MAX_BACKOFF_SECONDS)
                    slot.restart_at = now + slot.backoff
                    log.warning(
                        "worker %s exited (code %s); starting it again in %.0f s",
                        slot.process.pid,
                        slot.process.exitcode,
                        slot.backoff,
                    )
                elif now >= slot.restart_at:
                    slot.restart_at, slot.restarts = 0.0, slot.restarts + 1
                    self._start(slot)
        self.stop()

    def stop(self) -> None:
        alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            _signal(process, signal.SIGTERM)  # rq's warm shutdown: finish the job if it is quick
        deadline = time.monotonic() + STOP_SECONDS
        for process in alive:
            process.join(max(deadline - time.monotonic(), 0.05))
        for process in alive:
            if process.is_alive():  # cut short: the ledger and the journal resume it exactly
                _signal(process, signal.SIGKILL)
                process.join(5)


def _signal(process: BaseProcess, sig: int) -> None:
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)


def run_cron(rt: Any) -> None:
    from campaigns.ops.periodic import run_scheduler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_scheduler(rt, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", action="store_true", help="drain the queues, then exit")
    parser.add_argument("--cron-only", action="store_true", help="run only the periodic-job scheduler")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("MAILRAMP_WORKERS", "2")))
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("MAILRAMP_METRICS_PORT", "0")),
        help="serve this host's Prometheus counters on this port (0: off)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: no addresses at INFO
    app = build()
    rt = app.extensions["mailramp"]
    if args.metrics_port:
        from campaigns.ops.signals import serve

        serve(args.metrics_port)
    from campaigns.ops.durability import warn_if_not_durable

    warn_if_not_durable(rt.redis)
    if args.cron_only:
        run_cron(rt)
        return 0
    with app.app_context():
        resumed = recover(rt)
        if resumed:
            log.info("re-enqueued %d batches left by a dead worker", resumed)
    if args.burst:
        from campaigns.ops import queues

        worker = MailrampWorker(queues.names(rt.settings.queue_name), connection=rt.redis)
        worker.work(burst=True, with_scheduler=True)
        return 0
    Pool(slots(rt.settings.queue_name, args.workers)).run()
    # Every worker process has exited and their work is in the ledger and the journal: skip the
    # interpreter's finalization, which took seconds here and pushed a stop to the 10-second limit.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
