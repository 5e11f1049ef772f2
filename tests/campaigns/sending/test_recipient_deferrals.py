"""Per-recipient replies stay per recipient: a full mailbox (452), a busy one (450) or an over-quota
one (552) defers that recipient alone, with its own backoff; the domain's healthy mailboxes are
delivered at once, and nothing is sent twice. Only the server's 421 slows the domain."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from campaigns.jobs import send_batch_job, start_wave
from campaigns.ops import queues
from campaigns.runtime import Runtime
from campaigns.sending import send as send_module
from campaigns.sending.throttle_policy import ThrottlePolicy
from models import Contact, Send, utcnow
from tests.campaigns.sending.sink import RecordingSink, running
from tests.factories import add_campaign, add_template

FULL = "452 4.2.2 Mailbox full"


@pytest.fixture()
def sink(app: Any) -> Iterator[RecordingSink]:
    with running(RecordingSink()) as s:
        yield s


@pytest.fixture()
def rt(app: Any, sink: RecordingSink) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    # the default throttle policy: a domain deferral would pause big.test for 60 s and more
    runtime.settings = dataclasses.replace(runtime.settings, smtp_url=sink.url, throttle=None)
    return runtime


def test_452_for_40_percent_of_a_domain_defers_only_those_mailboxes(
    rt: Runtime, session: Session, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(send_module, "CHUNK", 5)  # the domain's mailboxes spread over several chunks
    emails = [f"user{i}@big.test" for i in range(25)] + [f"user{i}@other.test" for i in range(5)]
    session.execute(sa.insert(Contact), [{"email": e, "name": "U", "country": "France"} for e in emails])
    session.commit()
    full = {f"user{i}@big.test" for i in range(25) if i % 5 in (0, 2)}  # 10 of 25: 40%
    replies = ("452 4.2.2 Mailbox full", "450 4.2.1 Mailbox busy", "552 5.2.2 Over quota")
    for n, address in enumerate(sorted(full)):
        sink.defer_once[address] = replies[n % 3]
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    rt.redis.delete(*rt.redis.keys("rq:*"))

    first = send_batch_job(campaign.id, wave["wave_id"], 0)

    # Every healthy mailbox, at big.test too, delivered in this one run; the domain is not paused.
    delivered = Counter(r.rcpt for r in sink.received)
    assert set(delivered) == set(emails) - full and set(delivered.values()) == {1}
    assert not rt.redis.exists("mailramp:throttle:pause:other:big.test")
    # The deferred ones wait with their own backoff (the first: a minute), still queued, the reply kept.
    rows = session.execute(
        sa.select(Contact.email, Send.state, Send.attempts, Send.not_before, Send.error)
        .join(Contact, Contact.id == Send.contact_id)
        .where(Contact.email.in_(full))
    ).all()
    assert {r.state for r in rows} == {"queued"} and {r.attempts for r in rows} == {1}
    now = utcnow()
    for r in rows:
        assert r.not_before is not None
        assert timedelta(seconds=50) < r.not_before - now <= timedelta(seconds=60)
        assert r.error[:3] in ("452", "450", "552")
    # The batch comes back by itself when the first of them is due, off rq's retry count.
    assert first["retry_later"] == 0 and 50 < first["retry_in"] <= 60
    scheduled = ScheduledJobRegistry(queue=queues.queue(rt, queues.SENDING)).get_job_ids()
    assert len(scheduled) == 1

    # Their time comes (moved here rather than waited for): the next run delivers them, once each.
    session.execute(
        sa.update(Send).where(Send.state == "queued").values(not_before=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    second = send_batch_job(campaign.id, wave["wave_id"], 0)
    assert second["sent"] == len(full) and second["retry_in"] == 0
    delivered = Counter(r.rcpt for r in sink.received)
    assert set(delivered) == set(emails) and set(delivered.values()) == {1}
    session.expire_all()
    assert set(session.scalars(sa.select(Send.state))) == {"sent"}


def test_a_recipients_backoff_doubles_per_attempt_and_is_capped() -> None:
    policy = ThrottlePolicy()
    assert [policy.recipient_backoff(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert policy.recipient_backoff(20) == policy.max_pause_seconds
    custom = ThrottlePolicy.from_mapping({"recipient_retry_seconds": 5})
    assert custom is not None and custom.recipient_backoff(2) == 10


def test_a_421_still_slows_the_whole_domain(rt: Runtime, session: Session, sink: RecordingSink) -> None:
    session.execute(
        sa.insert(Contact),
        [{"email": f"user{i}@big.test", "name": "U", "country": "France"} for i in range(3)],
    )
    session.commit()
    sink.defer_once["user0@big.test"] = "421 4.7.0 Try again later"
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    rt.redis.delete(*rt.redis.keys("rq:*"))
    send_batch_job(campaign.id, wave["wave_id"], 0)
    assert rt.redis.exists("mailramp:throttle:pause:other:big.test")
