"""Retention: old raw events and sends are folded into the results and deleted; campaign results,
rollout aggregates and stored decisions read exactly the same; a live rollout's rows stay."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.events.tracking import RawEvent, push
from campaigns.jobs import start_wave
from campaigns.ops.periodic import periodic_jobs
from campaigns.privacy.retention import apply_retention, retention_job
from campaigns.reports.results import campaign_results
from campaigns.sending.send import send_batch
from models import ArmMetric, Event, Rollout, Send, utcnow
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_contacts, add_template

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
APPLE = "Mozilla/5.0"


def aggregates(session: Session) -> list[tuple[Any, ...]]:
    return sorted(
        session.execute(
            sa.select(
                ArmMetric.campaign_id,
                ArmMetric.stage_index,
                ArmMetric.arm,
                ArmMetric.segment,
                ArmMetric.metric,
                ArmMetric.count,
                ArmMetric.total,
                ArmMetric.total_sq,
            )
        ).all()
    )


def count(session: Session, model: Any) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_retention_folds_and_deletes_with_results_unchanged(
    app: Flask, session: Session, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    add_contacts(session, 30)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    sends = list(session.scalars(sa.select(Send).order_by(Send.id)))
    assert len(sends) == 30
    now = time.time()
    for i, send in enumerate(sends):
        if i % 2 == 0:
            push(rt.redis, RawEvent(kind="open", send_id=send.id, user_agent=HUMAN, at=now))
        if i % 3 == 0:  # a machine open (an image proxy), and for some a later human one too
            push(rt.redis, RawEvent(kind="open", send_id=send.id, user_agent=APPLE, ip="17.58.0.1", at=now))
        if i % 4 == 0:
            push(rt.redis, RawEvent(kind="click", send_id=send.id, link_id=1, user_agent=HUMAN, at=now))
            push(rt.redis, RawEvent(kind="click", send_id=send.id, link_id=1, method="HEAD", at=now))
        if i % 5 == 0:
            push(rt.redis, RawEvent(kind="conversion", send_id=send.id, value=10.0 + i, at=now))
        if i == 7:
            push(rt.redis, RawEvent(kind="unsubscribe", send_id=send.id, at=now))
    ingest(rt)
    session.expire_all()
    assert count(session, Event) > 30
    # a live rollout's sends are kept whatever their age
    live = Rollout(name="live", salt="s", state="ramping")
    session.add(live)
    session.flush()
    kept = [s.id for s in sends[:4]]
    session.execute(sa.update(Send).where(Send.id.in_(kept)).values(rollout_id=live.id))
    session.execute(sa.update(Event).where(Event.send_id.in_(kept)).values(rollout_id=live.id))
    # some machine events stay newer than the window: folded only when they go
    session.execute(sa.update(Send).values(queued_at=utcnow() - timedelta(days=800)))
    session.execute(
        sa.update(Event).where(Event.send_id.not_in([s.id for s in sends[6:9]]))
        .values(occurred_at=utcnow() - timedelta(days=400))
    )  # fmt: skip
    session.commit()
    before, metrics = campaign_results(session, campaign.id), aggregates(session)
    assert sum(r.machine_opens for r in before) > 0 and sum(r.bot_clicks for r in before) > 0

    first = apply_retention(session, events_days=365, sends_days=0)
    assert first.sends_deleted == 0 and first.events_deleted > 0
    assert campaign_results(session, campaign.id) == before
    remaining = set(session.scalars(sa.select(Event.send_id)))
    assert remaining and remaining <= {*kept, *(s.id for s in sends[6:9])}

    second = apply_retention(session, events_days=365, sends_days=730)
    assert second.sends_deleted == 26
    assert set(session.scalars(sa.select(Send.id))) == set(kept)
    assert set(session.scalars(sa.select(Event.send_id))) <= set(kept)
    assert campaign_results(session, campaign.id) == before
    assert aggregates(session) == metrics  # the rollout aggregates behind every decision
    assert apply_retention(session, events_days=365, sends_days=730).sends_deleted == 0  # idempotent


def test_retention_is_a_daily_job_with_configured_windows(app: Flask, session: Session) -> None:
    assert any(job.func is retention_job and job.cron for job in periodic_jobs())
    report = retention_job()
    assert (report["sends_deleted"], report["events_deleted"]) == (0, 0)
    now = utcnow()
    for key, days in (("events_cutoff", 365), ("sends_cutoff", 730)):
        age = now - datetime.fromisoformat(report[key])
        assert timedelta(days=days) <= age < timedelta(days=days, minutes=5)


def test_deleting_a_contact_keeps_campaign_results(app: Flask, session: Session, smtp_sink: SmtpSink) -> None:
    from campaigns.contacts.records import delete_contact

    rt = app.extensions["mailramp"]
    ids = add_contacts(session, 3)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    before = campaign_results(session, campaign.id)
    assert sum(r.sent for r in before) == 3
    delete_contact(session, ids[0])
    session.commit()
    assert count(session, Send) == 2
    assert campaign_results(session, campaign.id) == before


def test_bounce_records_go_with_the_sends_window_never_before_the_soft_bounce_window(
    app: Flask, session: Session
) -> None:
    from campaigns.privacy.retention import bounce_window
    from models import Bounce, Suppression

    now = utcnow()
    session.add_all(
        [
            Bounce(
                email="old@example.com",
                kind="hard",
                source="smtp",
                detail="550",
                created_at=now - timedelta(days=800),
            ),
            Bounce(
                email="new@example.com",
                kind="soft",
                source="smtp",
                detail="452",
                created_at=now - timedelta(days=20),
            ),
            Suppression(
                email="old@example.com", reason="bounce", detail="550", created_at=now - timedelta(days=800)
            ),
        ]
    )
    session.commit()
    report = apply_retention(session, events_days=0, sends_days=0, bounces_days=bounce_window(730, 30))
    assert report.bounces_deleted == 1
    assert set(session.scalars(sa.select(Bounce.email))) == {"new@example.com"}
    assert session.scalar(sa.select(Suppression.email)) == "old@example.com"  # the suppression stays
    assert bounce_window(10, 30) == 30 and bounce_window(0, 30) == 0
    assert retention_job()["bounces_deleted"] == 0
