"""A flow's send steps under faults: 2,000 contacts enter a flow (send `first` -> wait 1 minute ->
send `second`) while the platform runs as `mailramp run` starts it (the worker pool, whose workers
run the flow scheduler's periodic tick and the send batches, and the cron process), with at least 10
worker SIGKILLs and one Redis restart (SIGKILL, then start on the same files) on a Redis server
configured as the README asks of production.

Every journey completes, the send ledger holds exactly one `sent` row per contact and step (the
scheduler never writes a step twice and never skips one), every contact receives both steps, and
copies received twice stay within the bound the README states for the send path (1 per killed
process, the journal's window per connection for a Redis restart). Ends with one JSON line.
`MAILRAMP_FAULTS_FLOW_CONTACTS` sets the number of contacts."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from campaigns.flows.definition import FlowDefinition
from campaigns.flows.entering import enter_many
from campaigns.flows.records import change_state, create_flow
from campaigns.sending.journal import WINDOW
from models import Base, Flow, FlowEntry, Send, utcnow
from models.db import make_engine, make_session_factory
from tests.conftest import free_port
from tests.factories import add_contacts, add_template
from tests.faults.services import Platform, PrivatePostgres, RedisServer, wait_until, wait_while_progressing

CONTACTS = int(os.environ.get("MAILRAMP_FAULTS_FLOW_CONTACTS", "2000"))
WORKERS = 2
CONNECTIONS = 4
KILLS = 10
KILL_EVERY = 5.0  # seconds: the kills span both steps (the wait is a minute)
REDIS_RESTART_AFTER = 3
DEADLINE = 900.0
STALL_SECONDS = 180.0


class StepSink:
    """Counts each (recipient, subject): which step reached whom, and how often."""

    def __init__(self) -> None:
        self.copies: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = str(message_from_bytes(envelope.original_content, policy=policy.default)["Subject"])
        with self._lock:
            self.copies.update((rcpt, subject) for rcpt in envelope.rcpt_tos)
        return "250 OK"


class Chaos(threading.Thread):
    """SIGKILLs a pool worker every `KILL_EVERY` seconds, and restarts Redis once (after the third
    kill), until the flow is done."""

    def __init__(self, platform: Platform, redis: RedisServer, done: Any) -> None:
        super().__init__(name="chaos", daemon=True)
        self.platform, self.redis, self.done = platform, redis, done
        self.kills = self.redis_restarts = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.kills < KILLS and not self.done():
                time.sleep(KILL_EVERY)
                ready = [p for p in self.platform.rq_workers() if time.time() - p.create_time() > 1.0]
                if ready:
                    random.choice(ready).kill()
                    self.kills += 1
                if self.kills == REDIS_RESTART_AFTER and not self.redis_restarts:
                    time.sleep(1.0)
                    self.redis.kill()
                    time.sleep(1.0)
                    self.redis.start()
                    self.redis_restarts += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def database() -> tuple[str, PrivatePostgres | None]:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return url, None
    cluster = PrivatePostgres()
    cluster.init()
    cluster.start()
    return cluster.url, cluster


@pytest.mark.timeout(1500)
def test_flow_send_steps_under_worker_kills_and_a_redis_restart(tmp_path: Path) -> None:
    started = time.monotonic()
    database_url, cluster = database()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    sink = StepSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    web_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILRAMP_")},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "SECRET_KEY": "flow-faults",
        "MAILRAMP_BASE_URL": f"http://127.0.0.1:{web_port}",
        "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"),
        "MAILRAMP_SMTP_CONNECTIONS": str(CONNECTIONS),
        "MAILRAMP_THROTTLE": '{"enabled": false}',
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent.parent),
    }
    engine = make_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    platform = Platform(env, web_port, WORKERS, tmp_path)
    try:
        with factory() as session:
            contacts = add_contacts(session, CONTACTS)
            steps = [
                {
                    "id": "first",
                    "type": "send",
                    "template_id": add_template(session, name="a", subject="First").id,
                },
                {"id": "pause", "type": "wait", "minutes": 1},
                {
                    "id": "second",
                    "type": "send",
                    "template_id": add_template(session, name="b", subject="Second").id,
                },
            ]
            for step in steps:
                if step["type"] == "send":
                    step["from_email"] = "shop@example.com"
            definition = FlowDefinition.model_validate(
                {"trigger": {"kind": "event", "name": "browsed"}, "steps": steps}
            )
            flow_id = create_flow(session, "Under faults", definition, "faults").id
            change_state(session, flow_id, "activate")
            flow = session.get(Flow, flow_id)
            assert flow is not None
            assert (
                enter_many(session, flow, [(c, f"browsed:{c}", {}) for c in contacts], utcnow()) == CONTACTS
            )
            session.commit()
        platform.start()
        wait_until(lambda: len(platform.rq_workers()) == WORKERS, 120, "the worker pool")

        def missing() -> dict[str, int]:
            with factory() as session:
                open_entries = session.scalar(sa.select(sa.func.count()).where(FlowEntry.state == "active"))
                open_rows = session.scalar(
                    sa.select(sa.func.count()).where(Send.state.in_(("queued", "sending")))
                )
            return {
                "journeys not completed": int(open_entries or 0),
                "ledger rows not sent": int(open_rows or 0),
            }

        chaos = Chaos(platform, redis, lambda: not any(missing().values()))
        chaos.start()
        wait_while_progressing(missing, STALL_SECONDS, DEADLINE, "every journey to complete and send")
        chaos.join(60)
        assert chaos.error is None, chaos.error
        with factory() as session:
            ledger = Counter(
                dict(session.execute(sa.select(Send.state, sa.func.count()).group_by(Send.state)).all())
            )
            per_contact_step = session.execute(
                sa.select(Send.contact_id, Send.campaign_id, sa.func.count()).group_by(
                    Send.contact_id, Send.campaign_id
                )
            ).all()
            entries = Counter(
                dict(
                    session.execute(
                        sa.select(FlowEntry.state, sa.func.count()).group_by(FlowEntry.state)
                    ).all()
                )
            )
        received = sink.copies
        duplicates = sum(n - 1 for n in received.values())
        redis_bound = (WINDOW * CONNECTIONS + 1) * WORKERS
        bound = chaos.kills + chaos.redis_restarts * redis_bound
        figures = {
            "contacts": CONTACTS,
            "ledger": dict(ledger),
            "entries": dict(entries),
            "received_unique": len(received),
            "received_by_step": dict(Counter(subject for _rcpt, subject in received)),
            "duplicates": duplicates,
            "duplicate_bound": bound,
            "worker_kills": chaos.kills,
            "redis_restarts": chaos.redis_restarts,
            "seconds": round(time.monotonic() - started, 1),
        }
        print("\n" + json.dumps(figures))
        assert chaos.kills >= KILLS and chaos.redis_restarts == 1, figures
        assert entries == {"completed": CONTACTS}, figures
        assert ledger == {"sent": 2 * CONTACTS}, figures
        assert {n for _c, _k, n in per_contact_step} == {1} and len(per_contact_step) == 2 * CONTACTS
        assert len(received) == 2 * CONTACTS, figures  # nobody skipped, both steps
        assert duplicates <= bound, figures
    finally:
        platform.stop()
        smtp.stop()
        redis.stop()
        engine.dispose()
        if cluster is not None:
            cluster.stop()
