"""Servers the fault suite starts, breaks and restarts: a Redis server with the persistence the README
asks of production, a private PostgreSQL cluster (initdb in a temporary folder) when no
TEST_DATABASE_URL is given, and the platform's own processes (gunicorn, the worker pool, the
scheduler)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from campaigns.ops.durability import REDIS_PERSISTENCE
from models.db import make_engine
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


def wait_until(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def wait_while_progressing(  # type: ignore[no-untyped-def]
    missing, stall_seconds: float, limit_seconds: float, what: str
) -> None:
    """Wait until every count `missing()` returns is 0. A machine loaded by other work is slow, not
    stuck: give up only when the counts have not moved for `stall_seconds`, or after
    `limit_seconds` in all, and say what was still missing."""
    started = time.monotonic()
    last: dict[str, int] | None = None
    moved = started
    while True:
        try:
            now_missing = missing()
        except Exception as exc:  # a service restarting under the test: look again
            now_missing = {f"unknown ({type(exc).__name__})": 1}
        if not any(now_missing.values()):
            return
        now = time.monotonic()
        if now_missing != last:
            last, moved = now_missing, now
        if now - moved > stall_seconds or now - started > limit_seconds:
            left = ", ".join(f"{n} {name}" for name, n in now_missing.items() if n)
            raise AssertionError(
                f"timed out after {now - started:.0f} s ({now - moved:.0f} s without progress) waiting for "
                f"{what}: still {left}"
            )
        time.sleep(0.5)


class RedisServer:
    """redis-server on its own port and folder, `appendonly yes`, `appendfsync always`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        settings = [f"--{key} {value}".split(" ", 1) for key, value in REDIS_PERSISTENCE.items()]
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
        ]
        argv += ["--dir", str(self.folder), "--save", "", "--logfile", str(self.folder / "redis.log")]
        argv += [part for pair in settings for part in pair]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: Redis(port=self.port).ping(), 30, "redis-server")

    def kill(self) -> None:
        """SIGKILL: what survives is what the append-only file had synced."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class PrivatePostgres:
    """A PostgreSQL cluster made with initdb in a temporary folder (run as `postgres` when root)."""

    def __init__(self) -> None:
        # Its own folder under the system's temporary directory: pytest's folders are private to
        # their owner, and the server runs as `postgres` when the suite runs as root.
        self.folder = Path(tempfile.mkdtemp(prefix="mailramp-faults-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-o", options, "-w", "start"
        )

    def restart(self) -> None:
        """Immediate stop (every connection cut, no checkpoint), then start again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.start()

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [*self.as_user, "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def cut_every_connection(database_url: str) -> int:
    """pg_terminate_backend on every other session of the database: each worker's and the web's."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


class Platform:
    """The web server (gunicorn), the worker pool and the scheduler, as `mailramp run` starts them."""

    def __init__(self, env: dict[str, str], web_port: int, workers: int, logs: Path) -> None:
        self.env = env
        self.web_port = web_port
        self.workers = workers
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self._spawn(
            "web",
            [
                gunicorn,
                "--workers",
                "1",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "app:create_app()",
            ],
        )
        self._spawn("worker", [sys.executable, "worker.py", "--workers", str(self.workers)])
        self._spawn("scheduler", [sys.executable, "worker.py", "--cron-only"])

    def rq_workers(self) -> list[psutil.Process]:
        """The pool's worker processes (its direct children), oldest first."""
        try:
            children = psutil.Process(self.processes["worker"].pid).children()
        except psutil.Error:
            return []
        alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return sorted(alive, key=lambda p: p.create_time())

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except RedisError:
        return False
