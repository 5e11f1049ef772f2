"""The platform's real processes for a test: web (gunicorn), the worker pool and the scheduler exactly
as `mailramp run` starts them (`app.supervisor.children`), plus the inbound bounce server, against
the test database, the test Redis and a local SMTP sink; and the peak memory of every one of them.

The peak is each process's own VmHWM (/proc/<pid>/status), sampled every quarter second over the
whole tree (gunicorn's workers, the pool's forked rq workers): getrusage's ru_maxrss would report a
forking parent's peak across exec, and a child that exits takes its VmHWM with it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from app.supervisor import Child, children, stop_all, wait_until_answers
from tests.conftest import free_port
from tests.faults.services import wait_until


def peak_mb(pid: int) -> float | None:
    """The process's own peak resident set (VmHWM), in MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class MemoryWatch(threading.Thread):
    """Keeps the highest VmHWM seen of every process under each named root."""

    def __init__(self, roots: dict[str, int]) -> None:
        super().__init__(name="memory-watch", daemon=True)
        self.roots = roots
        self.peaks: dict[str, float] = {}
        self.commands: dict[str, str] = {}  # what each process is, for the figures
        self.stopping = threading.Event()

    def sample(self) -> None:
        for name, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                mb = peak_mb(process.pid)
                if mb is not None:
                    key = name if process.pid == pid else f"{name} child {process.pid}"
                    self.peaks[key] = max(mb, self.peaks.get(key, 0.0))
                    if key not in self.commands:
                        with contextlib.suppress(psutil.Error):
                            self.commands[key] = " ".join(process.cmdline())[-80:]

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            self.sample()

    def stop(self) -> dict[str, float]:
        self.sample()
        self.stopping.set()
        self.join(5)
        return {name: round(mb, 1) for name, mb in sorted(self.peaks.items())}


@dataclass
class RunningApp:
    base_url: str
    inbound_port: int
    kids: list[Child]
    log: Path
    memory: MemoryWatch = field(init=False)

    def alive(self) -> bool:
        return all(kid.process is not None and kid.process.poll() is None for kid in self.kids)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], workers: int = 2
) -> Iterator[RunningApp]:
    """Start the processes with `env` (and no other MAILRAMP_* setting), wait until the web server
    and the inbound server answer, yield; stop every process and its children after."""
    port, inbound_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    for name in [k for k in os.environ if k.startswith("MAILRAMP_")]:
        monkeypatch.delenv(name)
    settings = {"MAILRAMP_BASE_URL": base_url, "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"), **env}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    log_path = tmp_path / "mailramp.log"
    log = open(log_path, "ab")  # noqa: SIM115 (closed below, after the processes)
    mailramp = str(Path(sys.executable).with_name("mailramp"))
    kids = children("127.0.0.1", port, workers, log)
    kids.append(
        Child("inbound", [mailramp, "inbound", "--host", "127.0.0.1", "--port", str(inbound_port)], log)
    )
    running = RunningApp(base_url, inbound_port, kids, log_path)
    try:
        for kid in kids:
            kid.start()
        running.memory = MemoryWatch({kid.name: kid.process.pid for kid in kids if kid.process})
        running.memory.start()
        assert wait_until_answers(base_url + "/login", running.alive, 120), running.log_tail()

        def inbound_answers() -> bool:
            with socket.create_connection(("127.0.0.1", inbound_port), timeout=1):
                return True

        wait_until(inbound_answers, 120, "the inbound server")
        yield running
    finally:
        if getattr(running, "memory", None) is not None and running.memory.is_alive():
            running.memory.stop()
        stop_all(kids)
        log.close()
