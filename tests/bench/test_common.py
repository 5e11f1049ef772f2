"""bench.common's cleanup: a bench that ends, fails, or is stopped with SIGINT (Ctrl-C) or SIGTERM
leaves none of the processes it started, its embedded redis-server (daemonized, re-parented to pid 1)
included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import started_processes

ROOT = Path(__file__).resolve().parents[2]

# A tiny bench: an app with its embedded Redis, a subprocess and a multiprocessing child, then it
# says what it started and waits to be stopped (or, told to go on, fails or ends).
BENCH = """
import json, multiprocessing, subprocess, sys, time
sys.path.insert(0, {root!r})
from bench.common import scratch_app, workdir

folder = workdir()
app = scratch_app(folder)
redis_pid = int(app.extensions["mailramp"].redis.info("server")["process_id"])
sleeper = subprocess.Popen(["sleep", "600"])
child = multiprocessing.Process(target=time.sleep, args=(600,), daemon=True)
child.start()
print(json.dumps({{"folder": str(folder), "pids": [redis_pid, sleeper.pid, child.pid]}}), flush=True)
ending = sys.argv[1]
if ending != "wait":  # the test looks at what it started before it goes on
    sys.stdin.readline()
if ending == "error":
    raise RuntimeError("the bench failed")
if ending == "wait":
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("ending", ["SIGINT", "SIGTERM", "error", "end"])
def test_a_bench_leaves_nothing_running(tmp_path: Path, ending: str) -> None:
    script = tmp_path / "tiny_bench.py"
    script.write_text(BENCH.format(root=str(ROOT)))
    # what another test of this worker left in the environment (the supervisor's REDIS_URL/SMTP_URL
    # of a stopped embedded server, a metrics folder) stays out of the bench's
    left = ("BENCH_", "MAILRAMP_", "REDIS_URL", "DATABASE_URL", "SMTP_URL", "PROMETHEUS_MULTIPROC_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(left)}
    bench = subprocess.Popen(
        [sys.executable, str(script), "wait" if ending.startswith("SIG") else ending],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert bench.stdout is not None
    started = json.loads(bench.stdout.readline())
    try:
        assert all(alive(pid) for pid in started["pids"])
        if ending.startswith("SIG"):
            bench.send_signal(getattr(signal, ending))
        else:  # only now may it fail or end (its cleanup raced the check above)
            assert bench.stdin is not None
            bench.stdin.write("go\n")
            bench.stdin.close()
        code = bench.wait(timeout=120)
        remaining = [pid for pid in started["pids"] if alive(pid)]
        assert remaining == [], f"still running after the bench exited ({ending}, code {code})"
        assert started_processes([Path(started["folder"])], root=bench.pid) == []
        assert not Path(started["folder"]).exists()
        if ending.startswith("SIG"):
            assert code == 128 + getattr(signal, ending)
    finally:
        bench.kill()
        for pid in started["pids"]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
