"""Emails per second for a wave sent by one worker process over N SMTP connections to a local SMTP
sink in another process, against two measures taken in the same run:

- the floor: a loop doing only the irreducible work of each email of the same wave (render the same
  templates with Jinja2, sign the same links, build the same MIME message; bench/send_floor.py);
- the same pipeline (ledger, arms, recommendations, journal, locks) into a null transport.

It reports the null-transport pipeline's rate as a share of the floor's (what the bookkeeping costs)
and the real send's as a share of the null transport's (how well the network work overlaps), all in
emails per second of wall time, plus where the CPU went during the real send.

    .venv/bin/python bench/send.py [--contacts 20000] [--connections 4] [--no-pipelining] [--aiosmtpd]
                                   [--throttled] [--raw 0] [--rtt-ms 0] [--dots-in-flight 1]

The sink is Postfix's `smtp-sink` when installed (`make bench` installs it where it can: C, about
0.05 ms of CPU per message), else the aiosmtpd sink (as much CPU per message as the worker, which on a
small machine measures the sink); the first line says which. It offers PIPELINING unless
--no-pipelining. --throttled also sends a wave with throttling configured but not binding (the cost
of the checks); --raw N also measures the sink's acceptance of N prebuilt messages over bare smtplib
clients. With --rtt-ms N the worker reaches the sink through a proxy that hands on each chunk N/2 ms
late in each direction: a server that far away.

Targets (issue 26): null transport >= 0.6x the floor; real send >= 0.9x the null transport.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import burst_worker, emit, scratch_app, workdir
from bench.send_floor import floor_inputs, floor_loop
from bench.smtp_peers import free_port, raw_rate, raw_rate_parallel, run_delay_proxy, start_sink


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this host (Linux /proc), 0.0 where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_redis_pid(rt: Any) -> int | None:
    """The Redis server's pid when it runs on this host (the embedded one does), else None."""
    pid = int(rt.redis.info("server").get("process_id", 0))
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith("redis") else None
    except OSError:
        return None


class CpuSplit:
    """Where the CPU went during one phase: this process (the worker), the sink, Redis, and how much
    of the machine stayed idle (so whether the phase was short of CPU or waiting on something)."""

    def __init__(self, sink_pid: int, redis_pid: int | None) -> None:
        self.pids = {"sink": sink_pid, "redis": redis_pid}
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        sample = {name: cpu_seconds(pid) if pid else 0.0 for name, pid in self.pids.items()}
        return {**sample, "worker": time.process_time(), "idle": ticks[3] + ticks[4], "all": sum(ticks)}

    def stop(self, emails: int, seconds: float) -> dict[str, float]:
        end = self._sample()
        used = {k: end[k] - self.start[k] for k in end}
        split = {
            f"{k}_cpu_ms_per_email": round(1000 * used[k] / max(emails, 1), 3)
            for k in ("worker", "sink", "redis")
        }
        split |= {f"{k}_busy": round(used[k] / seconds, 2) for k in ("worker", "sink", "redis")}
        split["machine_idle"] = round(used["idle"] / max(used["all"], 1), 2)
        return split


class NullTransport:
    """Accepts everything at once: what the pipeline costs without the network."""

    def __init__(self, url: str) -> None:
        pass

    def __enter__(self) -> NullTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, message: Any) -> Any:
        from campaigns.sending.delivery import DeliveryResult

        return DeliveryResult(message.send_id, True)

    def send_journaled(self, message: Any, append: Any, commit: Any) -> Any:
        result = self.send(message)
        append(result)
        return result


def populate(session: Any, contacts: int) -> tuple[int, int]:
    from models import Contact, Interaction, Item

    chunk = 20_000
    for start in range(0, contacts, chunk):
        session.execute(
            sa.insert(Contact),
            [
                {
                    "email": f"person{i}@example.com",
                    "name": f"Person {i}",
                    "country": "United Kingdom",
                    "attributes": {"plan": "pro" if i % 3 else "free"},
                }
                for i in range(start, min(start + chunk, contacts))
            ],
        )
    session.execute(
        sa.insert(Item),
        [
            {
                "sku": f"SKU{i}",
                "name": f"Item number {i}",
                "url": f"https://shop.example/items/SKU{i}",
                "price": 2.5 + i % 40,
                "category": f"category {i % 12}",
            }
            for i in range(400)
        ],
    )
    item_ids = list(session.scalars(sa.select(Item.id)))
    contact_ids = list(session.scalars(sa.select(Contact.id).limit(20_000)))
    session.execute(
        sa.insert(Interaction),
        [
            {
                "contact_id": c,
                "item_id": item_ids[(c * 31 + j * 7) % len(item_ids)],
                "kind": "purchase",
                "value": 9.0,
            }
            for c in contact_ids
            for j in range(4)
        ],
    )
    session.commit()
    return contacts, len(item_ids)


def send_wave(rt: Any, campaign_id: int) -> tuple[float, float, float]:
    """(plan s, score s, send s) of one wave through an rq burst worker."""
    from campaigns.jobs import start_wave
    from campaigns.ops import queues

    t0 = time.perf_counter()
    start_wave(rt, campaign_id, None)
    plan_s = time.perf_counter() - t0
    # Scoring runs first (its own job, on its own queue); it is timed separately from sending.
    t0 = time.perf_counter()
    burst_worker([queues.queue(rt, queues.SCORING)], rt.redis).work(burst=True, max_jobs=1)
    score_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    burst_worker([queues.queue(rt, queues.SENDING)], rt.redis).work(burst=True)
    return plan_s, score_s, time.perf_counter() - t0


def sent_count(session: Any, campaign_id: int) -> dict[str, int]:
    from models import Send

    return dict(
        session.execute(
            sa.select(Send.state, sa.func.count()).where(Send.campaign_id == campaign_id).group_by(Send.state)
        ).all()
    )


def null_pipeline(rt: Any, campaign_id: int) -> tuple[int, float, float]:
    """Send a wave in this process into NullTransport: (sent, wall s, CPU s of this process)."""
    from campaigns.jobs import start_wave
    from campaigns.ops import queues
    from campaigns.sending.send import send_batch

    wave = start_wave(rt, campaign_id, None)
    burst_worker([queues.queue(rt, queues.SCORING)], rt.redis).work(burst=True, max_jobs=1)
    queues.queue(rt, queues.SENDING).empty()
    wall, cpu = time.perf_counter(), time.process_time()
    sent = 0
    for batch in range(wave["batches"]):
        sent += send_batch(rt, campaign_id, wave["wave_id"], batch, transport_factory=NullTransport).sent  # type: ignore[arg-type]
    return sent, time.perf_counter() - wall, time.process_time() - cpu


def raw_messages(campaign_id: int, count: int) -> list[bytes]:
    """Prebuilt messages the size of the campaign's, for the bare smtplib clients (--raw)."""
    from campaigns.events.tokens import TokenSigner
    from campaigns.sending.message import MessageBuilder

    builder = MessageBuilder(
        signer=TokenSigner("bench"),
        base_url="http://bench.test",
        campaign_id=campaign_id,
        from_email="shop@example.com",
        from_name="Shop",
        link_ids={},
        message_id_key="k",
    )
    html = (
        "<html><body>" + "<p>Item <a href='https://shop.example/x'>name</a> 9.99</p>" * 8 + "</body></html>"
    )
    return [
        builder.build(
            send_id=i,
            contact_id=i,
            email=f"p{i}@example.com",
            name="P",
            subject="Hi",
            html=html,
            item_by_url={},
        ).data
        for i in range(count)
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--exposure", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections of the worker")
    parser.add_argument("--no-pipelining", action="store_true", help="the sink does not offer PIPELINING")
    parser.add_argument(
        "--aiosmtpd", action="store_true", help="the aiosmtpd sink even if smtp-sink is there"
    )
    parser.add_argument("--throttled", action="store_true", help="also a wave with throttling not binding")
    parser.add_argument("--raw", type=int, default=0, help="also the sink's rate over bare smtplib clients")
    parser.add_argument(
        "--dots-in-flight", type=int, default=1, help="MAILRAMP_SMTP_DOTS_IN_FLIGHT: the worker's crash bound"
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="reach the sink through a proxy that delays each direction by half of this; 0: directly",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    folder = workdir()  # arms the cleanup: the sink, the proxy and Redis are stopped however this ends
    pipelining = not args.no_pipelining
    port = sink_port = free_port()
    sink_kind, sink = start_sink(sink_port, pipelining, aiosmtpd=args.aiosmtpd)
    if args.rtt_ms:  # the worker and the bare clients go through the proxy
        port, ready = free_port(), multiprocessing.Event()
        proxy = multiprocessing.Process(
            target=run_delay_proxy, args=(port, sink_port, args.rtt_ms, ready), daemon=True
        )
        proxy.start()
        ready.wait(10)

    from tests.factories import add_campaign, add_template

    off = {"enabled": False}
    app = scratch_app(
        folder,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        SMTP_CONNECTIONS=args.connections,
        SMTP_DOTS_IN_FLIGHT=args.dots_in_flight,
        THROTTLE=off,
    )
    rt = app.extensions["mailramp"]
    session = rt.session_factory()
    t0 = time.perf_counter()
    populate(session, args.contacts)
    setup_s = time.perf_counter() - t0
    template = add_template(session)
    ai = {"exposure_percent": args.exposure, "holdout_percent": 5, "plan": "manual"}  # AI at once, no ramp
    campaigns = [add_campaign(session, template.id, name=f"Run {i}", ai=ai) for i in range(3)]
    import dataclasses

    # 1. The CPU pipeline into a null transport (no network), in this process, then the floor loop
    # over the very sends it made.
    null_sent, null_wall, null_cpu = null_pipeline(rt, campaigns[2].id)
    null_rate = null_sent / null_wall
    tmpl, builder, sends = floor_inputs(rt, campaigns[2].id)
    floor_n, floor_s, floor_cpu = floor_loop(tmpl, builder, sends)
    floor_rate = floor_n / floor_s
    # 2. Unthrottled, one worker over its SMTP connections (planning and scoring timed apart).
    split_of = CpuSplit(sink.pid or 0, local_redis_pid(rt))
    plan_s, score_s, send_s = send_wave(rt, campaigns[0].id)
    states = sent_count(session, campaigns[0].id)
    sent = int(states.get("sent", 0))
    split = split_of.stop(sent, plan_s + score_s + send_s)
    rate = sent / send_s
    # 3. Optional: throttling configured, every limit far above this rate (the checks' cost).
    throttled_rate = None
    if args.throttled:
        roomy = {"other": {"rate_per_second": 1_000_000, "burst": 1_000_000, "concurrency": args.connections}}
        rt.settings = dataclasses.replace(rt.settings, throttle=roomy)
        _, _, throttled_s = send_wave(rt, campaigns[1].id)
        throttled_rate = int(sent_count(session, campaigns[1].id).get("sent", 0)) / throttled_s
    raw_one = raw_many = None
    if args.raw:
        prebuilt = raw_messages(campaigns[0].id, args.raw)
        raw_one, raw_many = raw_rate(port, prebuilt), raw_rate_parallel(port, prebuilt, args.connections)

    from models import Send

    arms = dict(
        session.execute(
            sa.select(Send.arm, sa.func.count()).where(Send.campaign_id == campaigns[0].id).group_by(Send.arm)
        ).all()
    )
    session.close()
    dialect = rt.session_factory.kw["bind"].dialect.name
    n = args.connections
    offers = "offers PIPELINING" if pipelining else "does not offer PIPELINING"
    where = f"{args.rtt_ms:g} ms round trip away (delaying proxy)" if args.rtt_ms else "on loopback"
    print(f"sink: {sink_kind} (pid {sink.pid}), {offers}, {where}")
    if sink_kind != "smtp-sink":
        print("  (Postfix's smtp-sink is not installed: the aiosmtpd sink costs as much CPU as the worker)")
    print(f"contacts: {args.contacts:,} on {dialect} (setup {setup_s:.1f} s)")
    print(
        f"floor loop (render, sign, build; nothing else): {floor_n:,} emails in {floor_s:.2f} s: {floor_rate:,.0f}/s "
        f"({floor_n / floor_cpu:,.0f} per CPU-second)"
    )
    print(
        f"pipeline into a null transport: {null_sent:,} in {null_wall:.2f} s: {null_rate:,.0f} emails/s "
        f"({null_sent / null_cpu:,.0f} per CPU-second); {null_rate / floor_rate:.2f}x the floor (target >= 0.6; "
        f"per CPU-second {null_sent / null_cpu / (floor_n / floor_cpu):.2f}x)"
    )
    print(f"wave planned in {plan_s:.2f} s; recommendations scored in {score_s:.2f} s")
    print(
        f"sent {sent:,} in {send_s:.2f} s by one worker over {n} connections: {rate:,.0f} emails/s  {states}; "
        f"{rate / null_rate:.2f}x the null transport (target >= 0.9)"
    )
    print(
        f"CPU during that send, per email and share of one core: worker {split['worker_cpu_ms_per_email']} ms "
        f"({split['worker_busy']:.0%}), sink {split['sink_cpu_ms_per_email']} ms ({split['sink_busy']:.0%}), "
        f"Redis {split['redis_cpu_ms_per_email']} ms ({split['redis_busy']:.0%}); machine idle {split['machine_idle']:.0%}"
    )
    print(f"arms: {arms}")
    if throttled_rate is not None:
        print(
            f"same with throttling configured, not binding: {throttled_rate:,.0f} emails/s ({throttled_rate / rate:.0%})"
        )
    if raw_one is not None and raw_many is not None:
        print(
            f"raw SMTP acceptance (prebuilt, bare smtplib): {raw_one:,.0f}/s over 1 connection, {raw_many:,.0f}/s over {n}"
        )
    emit(
        {
            "bench": "send",
            "sink": sink_kind,
            "contacts": args.contacts,
            "connections": n,
            "pipelining": pipelining,
            "rtt_ms": args.rtt_ms,
            "dots_in_flight": args.dots_in_flight,
            "sent": sent,
            "floor_emails_per_s": round(floor_rate, 1),
            "null_emails_per_s": round(null_rate, 1),
            "null_emails_per_cpu_s": round(null_sent / null_cpu, 1),
            "floor_emails_per_cpu_s": round(floor_n / floor_cpu, 1),
            "null_over_floor_cpu": round(null_sent / null_cpu / (floor_n / floor_cpu), 3),
            "emails_per_s": round(rate, 1),
            "null_over_floor": round(null_rate / floor_rate, 3),
            "send_over_null": round(rate / null_rate, 3),
            "throttled_not_binding_emails_per_s": round(throttled_rate, 1) if throttled_rate else None,
            "raw_emails_per_s_1": round(raw_one, 1) if raw_one else None,
            "raw_emails_per_s_n": round(raw_many, 1) if raw_many else None,
            "plan_s": round(plan_s, 2),
            "score_s": round(score_s, 2),
            "send_s": round(send_s, 2),
            **split,
        }
    )


if __name__ == "__main__":
    main()
