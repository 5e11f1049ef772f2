"""Delivery at the recipient's local time: batches cut by local send instant, scheduled, arms untouched."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from campaigns.ops import queues
from campaigns.runtime import Runtime
from campaigns.sending.arms import assign_batch
from campaigns.sending.local_time import next_local_hour
from campaigns.sending.planner import plan_wave
from campaigns.sending.send import send_batch
from models import Contact, Send
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_contacts, add_template

NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def zones(session: Session) -> None:
    add_contacts(session, 3, start=0, timezone="America/New_York")
    add_contacts(session, 3, start=3, timezone="Asia/Tokyo")
    add_contacts(session, 2, start=6, timezone="Mars/Olympus_Mons")  # unknown: the default zone
    add_contacts(session, 2, start=8, timezone="Europe/London")


def test_the_next_local_hour() -> None:
    from zoneinfo import ZoneInfo

    assert next_local_hour(NOON, ZoneInfo("America/New_York"), 9) == datetime(2026, 11, 29, 14, tzinfo=UTC)
    assert next_local_hour(NOON, ZoneInfo("Asia/Tokyo"), 9) == datetime(2026, 11, 30, 0, tzinfo=UTC)
    assert next_local_hour(NOON, ZoneInfo("Europe/London"), 9) == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert next_local_hour(NOON, ZoneInfo("Europe/London"), 12) == NOON  # that hour is running: now


def test_a_local_time_wave_is_batched_by_local_instant(app: Any, session: Session) -> None:
    zones(session)
    campaign = add_campaign(session, add_template(session).id)
    _wave, batches = plan_wave(
        session, campaign.id, None, 1000, NOON, local_hour=9, default_timezone="Europe/London"
    )
    session.commit()
    assert [(b.batch, b.size, b.not_before) for b in batches] == [
        (0, 3, datetime(2026, 11, 29, 14, tzinfo=UTC)),
        (1, 3, datetime(2026, 11, 30, 0, tzinfo=UTC)),
        (2, 4, datetime(2026, 11, 30, 9, tzinfo=UTC)),
    ]
    by_zone = Counter(
        session.execute(
            sa.select(Contact.timezone, Send.batch).join(Send, Send.contact_id == Contact.id)
        ).all()
    )
    assert by_zone == {
        ("America/New_York", 0): 3,
        ("Asia/Tokyo", 1): 3,
        ("Mars/Olympus_Mons", 2): 2,
        ("Europe/London", 2): 2,
    }


def test_batches_wait_for_their_hour_and_arms_do_not_change(
    app: Any, session: Session, smtp_sink: SmtpSink, api: Any
) -> None:
    rt: Runtime = app.extensions["mailramp"]
    zones(session)
    campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50})
    now = datetime.now(UTC)
    answer = api.post(
        f"/api/v1/campaigns/{campaign.id}/waves/local-time",
        json={"local_hour": (now.hour + 3) % 24, "default_timezone": "UTC"},
    )
    assert answer.status_code == 202
    wave_id = answer.json["wave_id"]
    # Batches whose hour has not come are scheduled in rq, not queued; run early, a batch sends nothing.
    scheduled = ScheduledJobRegistry(queue=queues.queue(rt, queues.SENDING)).get_job_ids()
    assert scheduled and all(j.startswith(f"send-{campaign.id}-{wave_id}-") for j in scheduled)
    session.expire_all()
    later = session.scalars(sa.select(Send.batch).where(Send.not_before > now + timedelta(minutes=1))).all()
    assert later
    outcome = send_batch(rt, campaign.id, wave_id, later[0])
    assert outcome.sent == 0 and smtp_sink.messages == []
    # When the hour comes (here: the rows' time moved into the past), the batches go out, and each
    # contact's arm is the one bucketing gives it, whatever the batch.
    session.execute(sa.update(Send).values(not_before=now - timedelta(minutes=1)))
    session.commit()
    for batch in sorted(set(session.scalars(sa.select(Send.batch)))):
        send_batch(rt, campaign.id, wave_id, batch)
    session.expire_all()
    rows = session.execute(
        sa.select(Send.contact_id, Send.arm, Contact.attributes, Contact.country).join(Contact)
    ).all()
    assert len(smtp_sink.messages) == len(rows) == 10
    assignment = assign_batch(
        session,
        campaign.rollout_id,
        np.array([r[0] for r in rows]),
        [r[2] for r in rows],
        [r[3] for r in rows],
    )
    assert [str(a) for a in assignment.arms] == [r[1] for r in rows]
    bad = api.post(
        f"/api/v1/campaigns/{campaign.id}/waves/local-time",
        json={"local_hour": 9, "default_timezone": "Nowhere/City"},
    )
    assert bad.status_code == 400 and bad.json["where"] == "default_timezone"
    bad = api.post(f"/api/v1/campaigns/{campaign.id}/waves/local-time", json={"local_hour": 24})
    assert bad.status_code == 400 and bad.json["where"] == "local_hour"
