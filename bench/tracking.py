"""Tracking endpoints at the floor: the open pixel and the click redirect of the real app, next to a
bare Flask endpoint (HMAC check + one Redis XADD, bench/tracking_bare.py), same gunicorn settings,
same Redis (append-only file synced on every write, as the README asks of production), same run.

Load: wrk (Debian's package) when installed, else a Python load generator. Each endpoint is loaded
alone, in turn. Checks that every request answered 2xx/302 added exactly one entry to the stream (no
accepted event lost). Prints a table and ends with one JSON line.

    python bench/tracking.py [--seconds 20] [--rounds 5] [--connections 16] [--workers 2] [--threads 1]

The default is the README's tracking tier: gunicorn's sync workers (`--threads 1`), whose requests
never wait for the interpreter lock behind another thread's; `--threads 4` measures the threaded
setup `make run` uses for the whole app.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit, workdir  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--dir", str(folder), "--save", "", "--appendonly", "yes", "--appendfsync", "always"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    from redis import Redis

    for _ in range(100):
        try:
            Redis.from_url(url).ping()
            break
        except Exception:
            time.sleep(0.1)
    return server, url


def prepare_app(folder: Path, redis_url: str) -> tuple[dict[str, str], list[str], list[str]]:
    """A database with one campaign, its link and 1,000 sends; returns the env and signed paths."""
    from app import create_app
    from campaigns.campaign_records import register_links
    from campaigns.events.tokens import TokenSigner, TrackingRef
    from models import Base, Send
    from models.db import make_engine
    from tests.factories import add_campaign, add_contacts, add_template

    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BENCH_REDIS_URL": redis_url,
        "SECRET_KEY": "bench-tracking",
        "MAILRAMP_INSTANCE_PATH": str(folder / "instance"),
        "PYTHONPATH": str(ROOT),
    }
    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": env["SECRET_KEY"]})
    rt = app.extensions["mailramp"]
    with rt.session() as session:
        contacts = add_contacts(session, 1000)
        campaign = add_campaign(session, add_template(session).id)
        link_id = register_links(session, campaign.id, {"https://shop.example/best"}, {})[
            "https://shop.example/best"
        ]
        session.execute(
            Send.__table__.insert(),
            [
                {"campaign_id": campaign.id, "contact_id": c, "state": "sent", "arm": "control"}
                for c in contacts
            ],
        )
        session.commit()
        send_ids = [s for (s,) in session.execute(Send.__table__.select().with_only_columns(Send.id))]
    signer = TokenSigner(env["SECRET_KEY"])
    pixels = [f"/t/o/{signer.sign(TrackingRef('open', s))}" for s in send_ids]
    clicks = [f"/t/c/{signer.sign(TrackingRef('click', s, link_id))}" for s in send_ids]
    return env, pixels, clicks


def serve(target: str, port: int, env: dict[str, str], workers: int, threads: int) -> subprocess.Popen[bytes]:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen([*argv, "--log-level", "warning", target], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing-here", timeout=1)
        except urllib.error.HTTPError:
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start")


LUA = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def load_wrk(port: int, paths: list[str], seconds: int, connections: int, folder: Path) -> dict[str, float]:
    listing = folder / f"paths-{port}-{len(paths)}-{abs(hash(paths[0]))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = folder / f"{listing.stem}.lua"
    script.write_text(LUA % listing)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    duration = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": requests,
        "rate": requests / duration,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "not_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def load_python(port: int, paths: list[str], seconds: int, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    bad = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, wrong, i = [], 0, offset
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn.request("GET", paths[i % len(paths)])
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            wrong += response.status not in (200, 302)
            i += connections
        with lock:
            latencies.extend(mine)
            bad[0] += wrong

    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "not_2xx_3xx": bad[0],
        "socket_errors": 0,
    }


def combine(runs: list[dict[str, float]]) -> dict[str, float]:
    """Rate over all slices; p99 the median of the slices' p99s."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["requests"] / r["rate"] for r in runs if r["rate"])
    p99s = sorted(r["p99_ms"] for r in runs)
    return {
        "requests": requests,
        "rate": requests / seconds if seconds else 0.0,
        "p99_ms": p99s[len(p99s) // 2],
        "not_2xx_3xx": sum(r["not_2xx_3xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20, help="per endpoint, over all rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="1: sync workers (the tracking tier)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per endpoint")
    args = parser.parse_args()
    folder = workdir()
    redis_server, redis_url = start_redis(folder)
    from redis import Redis

    from campaigns.events.tracking import STREAM

    redis = Redis.from_url(redis_url)
    env, pixels, clicks = prepare_app(folder, redis_url)
    tool = "wrk" if shutil.which("wrk") else "python"
    app_port, bare_port = free_port(), free_port()
    servers = [
        serve("app:create_app()", app_port, env, args.workers, args.threads),
        serve("bench.tracking_bare:create_app()", bare_port, env, args.workers, args.threads),
    ]
    from bench.tracking_bare import STREAM as BARE_STREAM
    from bench.tracking_bare import sign

    bare_paths = {kind: [f"/{kind}/{sign(f'{kind}:{i}')}" for i in range(1000)] for kind in ("o", "c")}
    endpoints = (
        ("bare_pixel", bare_port, bare_paths["o"], BARE_STREAM),
        ("pixel", app_port, pixels, STREAM),
        ("bare_click", bare_port, bare_paths["c"], BARE_STREAM),
        ("click", app_port, clicks, STREAM),
    )
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in endpoints}
    lost = dict.fromkeys(rounds, 0)
    slice_seconds = max(args.seconds // args.rounds, 1)
    try:
        for _, port, paths, _stream in endpoints:
            load_python(port, paths, 1, 4)  # warm-up: imports, connections, the link cache
        # Short slices, interleaved: a swing in the machine's load falls on both sides alike.
        for _ in range(args.rounds):
            for name, port, paths, stream in endpoints:
                before = redis.xlen(stream)
                if tool == "wrk":
                    figures = load_wrk(port, paths, slice_seconds, args.connections, folder)
                else:
                    figures = load_python(port, paths, slice_seconds, args.connections)
                added = redis.xlen(stream) - before
                answered = figures["requests"] - figures["not_2xx_3xx"]
                lost[name] += int(answered - added) if answered > added else 0
                rounds[name].append(figures)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        redis_server.terminate()
        redis_server.wait(10)
    results = {name: combine(runs) for name, runs in rounds.items()}
    pixel_ratio = results["pixel"]["rate"] / results["bare_pixel"]["rate"]
    click_ratio = results["click"]["rate"] / results["bare_click"]["rate"]
    print(
        f"load: {tool}, {args.connections} connections, {args.seconds} s per endpoint in {args.rounds} interleaved "
        f"slices; gunicorn -w {args.workers} --threads {args.threads}; Redis appendfsync always"
    )
    print(f"{'endpoint':<12} {'req/s':>9} {'p99 ms':>8} {'non-2xx':>8} {'lost':>5}")
    for name, figures in results.items():
        print(
            f"{name:<12} {figures['rate']:>9.0f} {figures['p99_ms']:>8.2f} {figures['not_2xx_3xx']:>8.0f} {lost[name]:>5}"
        )
    print(
        f"pixel {pixel_ratio:.2f}x of bare, click redirect {click_ratio:.2f}x of bare (target >= 0.85x, p99 < 20 ms)"
    )
    emit(
        {
            "bench": "tracking",
            "load": tool,
            "connections": args.connections,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "pixel_rps": round(results["pixel"]["rate"]),
            "bare_pixel_rps": round(results["bare_pixel"]["rate"]),
            "pixel_ratio": round(pixel_ratio, 3),
            "pixel_p99_ms": round(results["pixel"]["p99_ms"], 2),
            "click_rps": round(results["click"]["rate"]),
            "bare_click_rps": round(results["bare_click"]["rate"]),
            "click_ratio": round(click_ratio, 3),
            "click_p99_ms": round(results["click"]["p99_ms"], 2),
            "events_lost": sum(lost.values()),
        }
    )


if __name__ == "__main__":
    main()
