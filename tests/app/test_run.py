"""`mailramp run` as a newcomer meets it (what `make run` calls): a few lines on the terminal, the URL
printed when the web server answers, a crashed child started again, and Ctrl-C leaving no process
behind within 10 seconds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie not yet reaped
        return ""


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(600)
def test_run_prints_the_url_when_it_answers_restarts_a_crashed_child_and_stops_clean(tmp_path: Path) -> None:
    port, outbox = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "SECRET_KEY")
    }
    env |= {
        "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"),
        "MAILRAMP_OUTBOX_PORT": str(outbox),
        "MAILRAMP_DEMO_DATA": "synthetic",
        "MAILRAMP_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
    }
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "run",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert supervisor.stdout is not None
        url = None
        deadline = time.monotonic() + 300
        while url is None and time.monotonic() < deadline:
            line = supervisor.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            found = re.search(r"mailramp is running at (http://\S+)", line)
            if found:
                url = found.group(1)
                assert answers(url), "the printed URL answers at the moment it is printed"
        assert url == f"http://127.0.0.1:{port}/", lines
        for _ in range(3):  # the rest of the banner
            lines.append(supervisor.stdout.readline().rstrip("\n"))
        assert len(lines) <= 10, lines
        log = (tmp_path / "instance" / "mailramp.log").read_text()
        socket_file = re.search(r"embedded Redis at (\S+)", log).group(1)  # type: ignore[union-attr]
        assert Redis(unix_socket_path=socket_file).ping()

        me = psutil.Process(supervisor.pid)
        scheduler = next(p for p in me.children() if "--cron-only" in command(p))
        scheduler.kill()
        wait_for(
            lambda: any("--cron-only" in command(p) and p.pid != scheduler.pid for p in me.children()),
            60,
            "the scheduler to be started again",
        )
        descendants = me.children(recursive=True)
        assert len(descendants) >= 4  # gunicorn and its workers, the worker pool and its process, scheduler

        started = time.monotonic()
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=30)
        assert time.monotonic() - started < 10, "Ctrl-C stops everything within 10 seconds"
        left = [p for p in descendants if alive(p)]
        assert not left, [command(p) for p in left]
        with pytest.raises((RedisConnectionError, FileNotFoundError, OSError)):
            Redis(unix_socket_path=socket_file, socket_connect_timeout=1, retry_on_error=[]).ping()
        assert not answers(url)
    finally:
        if supervisor.poll() is None:  # a failed assertion: stop it as Ctrl-C would (its Redis too)
            supervisor.send_signal(signal.SIGINT)
            try:
                supervisor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for p in psutil.Process(supervisor.pid).children(recursive=True):
                    p.kill()
                supervisor.kill()
