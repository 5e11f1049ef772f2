"""Simulated recipients: through the tracking stream and the ingest worker, labelled, deterministic,
and for the local outbox only (never with a real SMTP server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from campaigns import runtime
from campaigns.demo.simulate import SIMULATED_AGENT, outbox_recipients_job, simulate_sends
from campaigns.events.ingest import ingest
from campaigns.jobs import start_wave
from campaigns.sending.send import send_batch
from models import Contact, Event, Send, Wave, simulated_now, utcnow
from tests.conftest import empty_database, free_port
from tests.factories import add_campaign, add_contacts, add_template


def send_everyone(rt: Any, n: int) -> int:
    with rt.session() as session:
        add_contacts(session, n)
        campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50})
        campaign_id = campaign.id
    wave = start_wave(rt, campaign_id, None)
    for batch in range(wave["batches"]):
        send_batch(rt, campaign_id, wave["wave_id"], batch)
    return int(campaign_id)


def test_events_take_the_real_path_and_a_replay_stores_nothing_twice(app: Flask) -> None:
    rt = app.extensions["mailramp"]
    campaign_id = send_everyone(rt, 300)
    with rt.session() as session:
        first = simulate_sends(rt, session, campaign_id=campaign_id, seed=3)
    ingest(rt)
    with rt.session() as session:
        again = simulate_sends(rt, session, campaign_id=campaign_id, seed=3)
    ingest(rt)
    assert first.events == again.events and first.recipients == 300
    with rt.session() as session:
        stored = Counter(session.scalars(sa.select(Event.kind).where(Event.campaign_id == campaign_id)))
        agents = set(session.scalars(sa.select(Event.user_agent)))
        opened = session.scalar(sa.select(sa.func.count()).where(Send.opened_at.is_not(None)))
        machine = session.scalar(sa.select(sa.func.count()).where(Event.machine.is_(True)))
    assert dict(stored) == first.events  # each once, though pushed twice
    assert agents == {SIMULATED_AGENT} and machine == 0  # human-looking, and labelled
    assert opened == first.events["open"] and 50 < opened < 150


@pytest.fixture()
def outbox_app(database_url: str, redis: Redis, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """`make run`'s setup: no SMTP_URL, so mail goes to the local outbox; recipients simulated."""
    from app import create_app
    from campaigns.sending.outbox import start_outbox
    from models.db import make_engine

    engine = make_engine(database_url)
    empty_database(engine)
    port = free_port()
    controller = start_outbox(tmp_path / "outbox", port=port)
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "simulated-test", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
         "SMTP_URL": None, "OUTBOX_PORT": port, "SIMULATE_RECIPIENTS": True},
        instance_path=str(tmp_path / "instance"),
    )  # fmt: skip
    yield app
    controller.stop()
    app.extensions["mailramp"].session_factory.kw["bind"].dispose()
    empty_database(engine)
    engine.dispose()


def test_the_local_outbox_sees_opens_clicks_and_conversions_arrive(outbox_app: Flask) -> None:
    rt = outbox_app.extensions["mailramp"]
    runtime.install(rt)
    assert rt.settings.simulated_recipients
    send_everyone(rt, 200)
    counts = []
    for minutes in (1, 5, 90):  # one simulated hour passes in a real minute
        with simulated_now(utcnow() + timedelta(minutes=minutes)):
            outbox_recipients_job()
        with rt.session() as session:
            counts.append(session.scalar(sa.select(sa.func.count()).select_from(Event)))
    assert 0 < counts[0] <= counts[1] < counts[2]  # engagement arrives over time
    with rt.session() as session:
        kinds = set(session.scalars(sa.select(Event.kind)))
        statuses = set(session.scalars(sa.select(Contact.status)))
    assert {"open", "click"} <= kinds and "unsubscribe" not in kinds and statuses == {"active"}


def test_never_with_a_real_smtp_server(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> None:
    from app import create_app

    real = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
         "SMTP_URL": "smtp://mail.example.com:587", "SIMULATE_RECIPIENTS": True},
        instance_path=str(tmp_path / "real"),
    )  # fmt: skip
    assert not real.extensions["mailramp"].settings.simulated_recipients
    real.extensions["mailramp"].session_factory.kw["bind"].dispose()
    runtime.install(app.extensions["mailramp"])  # the suite's app again
    assert outbox_recipients_job() == 0
    with app.extensions["mailramp"].session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Wave)) == 0
