"""A 20,000-contact wave under faults, on PostgreSQL, with a Redis server configured as the README
asks of production: at least 20 worker SIGKILLs, one Redis restart (SIGKILL, then start on the same
files) and one cut of every database connection, while recipients open and click the messages they
receive. Nobody is skipped, duplicates stay within the bound the README states, in all and fault by
fault (each duplicate charged to the fault that caused it: at most 1 per kill), no event answered 2xx
or 302 is lost, and the wave finishes by itself. `MAILRAMP_FAULTS_KILLS` sets the number of kills
(20 by default). Ends with one JSON line of the figures."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from redis import Redis

from campaigns.events.tracking import GROUP, STREAM
from campaigns.jobs import start_wave
from campaigns.runtime import Runtime, Settings
from campaigns.sending.journal import WINDOW
from models import Base, Event, Send, Wave
from models.db import make_engine, make_session_factory
from tests.conftest import free_port
from tests.factories import add_campaign, add_contacts, add_template
from tests.faults.attribution import Fault, charge, per_fault
from tests.faults.services import (
    Platform,
    PrivatePostgres,
    RedisServer,
    cut_every_connection,
    wait_until,
    wait_while_progressing,
)
from tests.faults.traffic import CountingSink, Recipients

CONTACTS = int(os.environ.get("MAILRAMP_FAULTS_CONTACTS", "20000"))
CONNECTIONS = 4  # SMTP connections per worker process
BATCH = 500
WORKERS = 2
KILLS = int(os.environ.get("MAILRAMP_FAULTS_KILLS", "20"))
REDIS_RESTART_AFTER = round(KILLS * 0.3)  # after the 6th of 20 kills
DATABASE_CUT_AFTER = round(KILLS * 0.65)  # after the 13th of 20
SECRET = "fault-suite-secret-key"
# deadlines in all; a wait gives up earlier only when nothing moved for STALL_SECONDS (a loaded
# machine is slow, not stuck)
WAVE_DEADLINE = 900.0
INGEST_DEADLINE = 600.0
STALL_SECONDS = 180.0


def database() -> tuple[str, PrivatePostgres | None]:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return url, None
    cluster = PrivatePostgres()
    cluster.init()
    cluster.start()
    return cluster.url, cluster


class Chaos(threading.Thread):
    """SIGKILLs a worker process about every second; one Redis restart a second after the kill
    REDIS_RESTART_AFTER and one cut of every database connection a second after the kill
    DATABASE_CUT_AFTER (a second apart, so each duplicate can be charged to one fault; `faults`
    keeps when each came). Stops when done or when the wave is."""

    def __init__(self, platform: Platform, redis: RedisServer, cut_database: Any, wave_done: Any) -> None:
        super().__init__(name="chaos", daemon=True)
        self.platform, self.redis, self.cut_database, self.wave_done = (
            platform,
            redis,
            cut_database,
            wave_done,
        )
        self.kills = 0
        self.redis_restarts = 0
        self.database_cuts = 0
        self.faults: list[Fault] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.kills < KILLS and not self.wave_done():
                time.sleep(1.0)
                self.kill_one()
                if self.kills == REDIS_RESTART_AFTER and not self.redis_restarts:
                    time.sleep(1.0)
                    self.faults.append(Fault(time.monotonic(), "redis_restart"))
                    self.redis.kill()
                    time.sleep(1.0)
                    self.redis.start()
                    self.redis_restarts += 1
                if self.kills == DATABASE_CUT_AFTER and not self.database_cuts:
                    time.sleep(1.0)
                    self.faults.append(Fault(time.monotonic(), "database_cut"))
                    self.cut_database()
                    self.database_cuts += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def kill_one(self) -> None:
        ready = [p for p in self.platform.rq_workers() if time.time() - p.create_time() > 1.0]
        if ready:
            victim = random.choice(ready)
            self.faults.append(Fault(time.monotonic(), "kill"))
            victim.kill()
            self.kills += 1


@pytest.mark.timeout(1800)
def test_wave_under_faults(tmp_path: Path) -> None:
    started = time.monotonic()
    database_url, cluster = database()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    sink = CountingSink(delay=0.003, sample=8)
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    web_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILRAMP_")},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "SECRET_KEY": SECRET,
        "MAILRAMP_BASE_URL": f"http://127.0.0.1:{web_port}",
        "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"),
        "MAILRAMP_SMTP_CONNECTIONS": str(CONNECTIONS),
        # one receiving domain (example.com): this suite is about faults, not the per-domain limits
        "MAILRAMP_THROTTLE": '{"enabled": false}',
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent.parent),
    }
    engine = make_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    platform = Platform(env, web_port, WORKERS, tmp_path)
    recipients = Recipients(sink, web_port, SECRET)
    try:
        factory = make_session_factory(engine)
        rt = Runtime(
            factory,
            Redis.from_url(redis.url),
            Settings(secret_key=SECRET, base_url=env["MAILRAMP_BASE_URL"], batch_size=BATCH),
        )
        with factory() as session:
            add_contacts(session, CONTACTS)
            campaign_id = add_campaign(session, add_template(session).id).id
        platform.start()
        wait_until(lambda: len(platform.rq_workers()) == WORKERS, 120, "the worker pool")
        wave = start_wave(rt, campaign_id, None)
        assert wave["planned"] == CONTACTS

        def wave_done() -> bool:
            with factory() as session:
                return session.scalar(sa.select(Wave.status).where(Wave.id == wave["wave_id"])) == "done"

        def cut_database() -> None:
            if cluster is not None:
                cluster.restart()
            else:
                assert cut_every_connection(database_url) > 0

        recipients.start()
        chaos = Chaos(platform, redis, cut_database, wave_done)
        chaos.start()

        def wave_missing() -> dict[str, int]:
            with factory() as session:
                open_rows = session.scalar(
                    sa.select(sa.func.count()).where(
                        Send.wave_id == wave["wave_id"], Send.state.in_(("queued", "sending"))
                    )
                )
            return {"ledger rows not yet sent": int(open_rows or 0), "wave not closed": int(not wave_done())}

        wait_while_progressing(wave_missing, STALL_SECONDS, WAVE_DEADLINE, "the wave to finish by itself")
        wave_seconds = time.monotonic() - started
        chaos.join(60)
        assert chaos.error is None, chaos.error
        recipients.stopping.set()
        recipients.join(120)

        with factory() as session:
            ledger = Counter(
                dict(
                    session.execute(
                        sa.select(Send.state, sa.func.count())
                        .where(Send.wave_id == wave["wave_id"])
                        .group_by(Send.state)
                    ).all()
                )
            )

        def stored() -> Counter[tuple[int, str]]:
            with factory() as session:
                rows = session.execute(
                    sa.select(Event.send_id, Event.kind, sa.func.count()).group_by(Event.send_id, Event.kind)
                )
                return Counter({(send_id, kind): n for send_id, kind, n in rows})

        def lost() -> int:
            have = stored()
            return sum(max(0, n - have[key]) for key, n in recipients.accepted.items())

        events = Redis.from_url(redis.url)
        wait_while_progressing(
            lambda: {
                "accepted events not stored": lost(),
                "events read but not acknowledged": int(events.xpending(STREAM, GROUP)["pending"]),
                "events in the stream": int(events.xlen(STREAM)),
            },
            STALL_SECONDS,
            INGEST_DEADLINE,
            "every accepted event to be stored",
        )
        received = sink.recipients
        duplicates = sum(n - 1 for n in received.values())
        # docs/architecture.md: 1 per killed process; a Redis restart, 4 unacknowledged appends per
        # connection + 1 per process; a database cut, 0
        redis_bound = (WINDOW * CONNECTIONS + 1) * WORKERS
        bound = chaos.kills * 1 + chaos.redis_restarts * redis_bound
        charged, unexplained = charge(chaos.faults, sink.arrivals.values())
        per_kill = per_fault(chaos.faults, charged, "kill")
        per_redis = per_fault(chaos.faults, charged, "redis_restart")
        per_cut = per_fault(chaos.faults, charged, "database_cut")
        figures = {
            "contacts": CONTACTS,
            "sent_ledger": ledger.get("sent", 0),
            "received_unique": len(received),
            "skipped": CONTACTS - len(received),
            "duplicates": duplicates,
            "duplicate_bound": bound,
            "duplicates_per_kill_max": max(per_kill, default=0),
            "kills_by_duplicates": {str(n): k for n, k in sorted(Counter(per_kill).items())},
            "duplicates_redis_restart": sum(per_redis),
            "duplicates_redis_restart_bound": redis_bound,
            "duplicates_database_cut": sum(per_cut),
            "duplicates_unexplained": unexplained,
            "worker_kills": chaos.kills,
            "redis_restarts": chaos.redis_restarts,
            "database_cuts": chaos.database_cuts,
            "events_accepted": sum(recipients.accepted.values()),
            "events_refused_503": recipients.refused,
            "events_unanswered": recipients.failed,
            "events_lost": lost(),
            "wave_seconds": round(wave_seconds, 1),
            "total_seconds": round(time.monotonic() - started, 1),
            "database": "private cluster" if cluster else "TEST_DATABASE_URL",
        }
        print("\n" + json.dumps(figures))
        assert chaos.kills >= KILLS and chaos.redis_restarts == 1 and chaos.database_cuts == 1, figures
        assert ledger == {"sent": CONTACTS}, ledger
        assert figures["skipped"] == 0, figures
        assert duplicates <= bound, figures
        assert max(per_kill, default=0) <= 1, figures
        assert max(per_redis, default=0) <= redis_bound, figures
        assert sum(per_cut) == 0 and unexplained == 0, figures
        assert figures["events_lost"] == 0 and figures["events_accepted"] > 0, figures
    finally:
        recipients.stopping.set()
        platform.stop()
        smtp.stop()
        redis.stop()
        engine.dispose()
        if cluster is not None:
            cluster.stop()
