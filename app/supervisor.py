"""`mailramp run` (what `make run` calls): embedded services when none are configured, migrations,
the demo workspace on first run, then web + worker + scheduler until Ctrl-C stops them all.

The terminal gets a few lines and the URL once the web server answers; everything the processes log
goes to `instance/mailramp.log` (`--verbose` shows it on the terminal too). A child that dies is
started again with backoff; Ctrl-C (or SIGTERM) stops every process, grandchildren included, within
STOP_SECONDS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from app.config import ROOT, instance_path

DEMO_EMAIL = "admin@demo.mailramp.test"
DEMO_PASSWORD = "mailramp-demo"  # a local demo login, printed at start; change it for anything real
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "online_retail.csv.gz"
STOP_SECONDS = 6.0  # SIGTERM, then SIGKILL to what is left; within the promised 10 s
WEB_READY_SECONDS = 180.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 30.0


def start_services(instance: Path, say: Any) -> list[Any]:
    """Embedded Redis and the SMTP outbox, exported to the child processes through the environment."""
    keep: list[Any] = []
    instance.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("REDIS_URL"):
        from campaigns.ops.durability import start_embedded_redis

        server = start_embedded_redis(instance / "redis.rdb")
        os.environ["REDIS_URL"] = f"unix://{server.socket_file}?db=0"
        keep.append(server)
        say(f"embedded Redis at {server.socket_file} (append-only file synced on every write)", log_only=True)
    if not os.environ.get("SMTP_URL"):
        from campaigns.sending.outbox import start_outbox

        port = int(os.environ.get("MAILRAMP_OUTBOX_PORT", "8025"))
        keep.append(start_outbox(instance / "outbox", port=port))
        os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        say(f"local SMTP outbox on 127.0.0.1:{port} (messages under {instance / 'outbox'})", log_only=True)
    return keep


def prepare(demo_data: str | None, say: Any) -> str:
    """Migrate; on first run create the demo login and workspace and queue a first model training.
    Returns the banner's login line: the demo login only while it works, and says which."""
    from app import create_app
    from app.extensions import db

    _prepare(demo_data, say)
    with create_app().test_request_context():
        return login_line(db())


def login_line(session: Any) -> str:
    """The demo login while the demo exists and its password still works; after the demo's removal,
    the same login (its admin is kept) with a reminder; nothing once its password was changed."""
    from app.auth import authenticate
    from campaigns.demo.remove import demo_present

    if authenticate(DEMO_EMAIL, DEMO_PASSWORD) is None:
        return ""
    if demo_present(session):
        return f"  demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"
    return f"  login: {DEMO_EMAIL} / {DEMO_PASSWORD} (the demo is removed: change this password)"


def _prepare(demo_data: str | None, say: Any) -> None:
    import sqlalchemy as sa

    from app import create_app, migrate
    from app.auth import create_user
    from app.config import database_url
    from app.extensions import db
    from models import Role, User

    migrate.upgrade(database_url(instance_path()))  # first: a fresh database gets its shared key table
    app = create_app()
    from campaigns.ops.durability import persistence_problem

    problem = persistence_problem(app.extensions["mailramp"].redis)
    if problem:
        say(f"warning: {problem}")
    with app.test_request_context():
        if db().scalar(sa.select(sa.func.count()).select_from(User)):
            return
        create_user(DEMO_EMAIL, DEMO_PASSWORD, Role.admin, name="Demo admin")
        db().commit()
        path = (
            demo_data or app.config.get("DEMO_DATA") or (str(SHARED_DATA) if SHARED_DATA.exists() else None)
        )
        if path == "synthetic":
            path = None
        say(f"first run: building the demo workspace from {path or 'the synthetic generator'} ...")
        from campaigns.demo.workspace import build_demo

        summary = build_demo(db(), path)
        db().commit()
        say(f"demo workspace: {summary}", log_only=True)
        from campaigns.recommender.jobs import enqueue_training

        enqueue_training(app.extensions["mailramp"], actor=DEMO_EMAIL)
        say("a first recommender model is training on the worker", log_only=True)
        from campaigns.jobs import enqueue_demo_story

        enqueue_demo_story(app.extensions["mailramp"])
        say("the demo story (a staged AI rollout with simulated recipients) is replaying on the worker")


@dataclass
class Child:
    """One supervised process, in its own process group so that stopping it stops its children."""

    name: str
    argv: list[str]
    log: IO[bytes] | None
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 1.0
    restart_at: float = 0.0
    restarts: int = field(default=0)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def signal_group(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)


def children(host: str, port: int, workers: int, log: IO[bytes] | None) -> list[Child]:
    python = sys.executable
    gunicorn = str(Path(python).with_name("gunicorn"))
    web = [gunicorn, "--workers", "2", "--threads", "4", "--bind", f"{host}:{port}", "--access-logfile", "-"]
    return [
        Child("web", [*web, "--graceful-timeout", "3", "app:create_app()"], log),
        Child("worker", [python, "worker.py", "--workers", str(workers)], log),
        Child("scheduler", [python, "worker.py", "--cron-only"], log),
    ]


def wait_until_answers(url: str, alive: Any, seconds: float = WEB_READY_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer: the server is up
        except OSError:
            time.sleep(0.2)
    return False


def stop_all(kids: list[Child]) -> None:
    log = logging.getLogger("mailramp.run")
    started = time.monotonic()
    for child in kids:
        child.signal_group(signal.SIGTERM)
    deadline = started + STOP_SECONDS
    for child in kids:
        if child.process is None:
            continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.05))
        log.info("%s: %s after %.1f s", child.name, child.process.poll(), time.monotonic() - started)
    for child in kids:  # whatever is left of each group, grandchildren included
        child.signal_group(signal.SIGKILL)
        if child.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=2)


def supervise(kids: list[Child], stopping: Any, say: Any) -> None:
    """Restart a child that died, with backoff (1 s doubling to a minute; reset once it ran 30 s)."""
    while not stopping():
        now = time.monotonic()
        for child in kids:
            if child.process is None or child.process.poll() is None:
                continue
            if child.restart_at == 0.0:
                lived = now - child.started
                child.backoff = (
                    1.0 if lived > HEALTHY_AFTER_SECONDS else min(child.backoff * 2, MAX_BACKOFF_SECONDS)
                )
                child.restart_at = now + child.backoff
                child.signal_group(signal.SIGKILL)  # leftovers of the dead child's group
                say(
                    f"the {child.name} stopped (exit {child.process.returncode}); starting it again in {child.backoff:.0f} s"
                )
            elif now >= child.restart_at:
                child.restart_at, child.restarts = 0.0, child.restarts + 1
                child.start()
        time.sleep(0.25)


def run(host: str, port: int, workers: int, demo_data: str | None, verbose: bool = False) -> None:
    instance = instance_path()
    instance.mkdir(parents=True, exist_ok=True)
    log_path = instance / "mailramp.log"
    log_file = None if verbose else open(log_path, "ab")  # noqa: SIM115 (lives as long as the run)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler() if verbose else logging.FileHandler(log_path)],
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: no addresses at INFO
    log = logging.getLogger("mailramp.run")

    def say(text: str, log_only: bool = False) -> None:
        log.info(text)
        if not log_only and not verbose:
            click.echo(text)

    say(f"mailramp: starting (log: {log_path}; --verbose shows it here)")
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    services: list[Any] = []
    kids: list[Child] = []
    try:
        services = start_services(instance, say)
        os.environ.setdefault("MAILRAMP_BASE_URL", f"http://{host}:{port}")
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up web and worker processes
            metrics_dir = instance / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        login = ""
        if not stopping:
            login = prepare(demo_data, say)
        kids = children(host, port, workers, log_file)
        for child in kids:
            if not stopping:
                child.start()
        web = kids[0]
        url = f"http://{host}:{port}/"
        if not stopping and wait_until_answers(url, lambda: not stopping and web.process.poll() is None):  # type: ignore[union-attr]
            click.echo("")
            click.echo(f"  mailramp is running at {url}")
            if login:
                click.echo(login)
            click.echo("  Ctrl-C stops everything.")
            click.echo("")
        elif not stopping:
            say(f"the web server did not answer at {url}; see {log_path}")
        supervise(kids, lambda: stopping, say)
    finally:
        stop_all(kids)
        for service in services:
            began = time.monotonic()
            with contextlib.suppress(Exception):
                if hasattr(service, "socket_file"):
                    from campaigns.ops.durability import stop_embedded_redis

                    stop_embedded_redis(service)
                elif hasattr(service, "stop"):
                    service.stop()
            log.info("%s stopped in %.1f s", type(service).__name__, time.monotonic() - began)
        if log_file is not None:
            log_file.close()
        click.echo("mailramp stopped.")
