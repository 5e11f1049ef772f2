"""Throttling on real parts: Redis token buckets, an aiosmtpd server that defers part of one domain's
messages with 421, rates measured from the server's receive times."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from campaigns.jobs import resume_open_waves, send_batch_job, start_wave
from campaigns.ops import queues
from campaigns.reports.results import campaign_progress
from campaigns.runtime import Runtime
from campaigns.sending.send import send_batch
from campaigns.sending.throttle_policy import ThrottlePolicy
from campaigns.sending.throttling import Throttle
from models import Contact, Send
from tests.campaigns.sending.sink import RecordingSink, running
from tests.factories import add_campaign, add_template

SLOW = {"domains": ["slow.test"], "rate_per_second": 40, "burst": 5, "concurrency": 2}


@pytest.fixture()
def sink(app: Any) -> Iterator[RecordingSink]:
    with running(RecordingSink()) as s:
        yield s


def runtime_with(app: Any, sink: RecordingSink, throttle: dict[str, Any]) -> Runtime:
    rt: Runtime = app.extensions["mailramp"]
    rt.settings = dataclasses.replace(rt.settings, smtp_url=sink.url, throttle=throttle)
    return rt


def add_recipients(session: Session, per_domain: dict[str, int]) -> None:
    rows = [
        {"email": f"user{i}@{domain}", "name": f"User {i}", "country": "France"}
        for domain, n in per_domain.items()
        for i in range(n)
    ]
    session.execute(sa.insert(Contact), rows)
    session.commit()


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_a_throttled_wave_with_421s_sends_everyone_once_within_the_limits(
    app: Any, session: Session, sink: RecordingSink
) -> None:
    policy = {"groups": {"slow": SLOW}, "deferral_pause_seconds": 0.5, "max_pause_seconds": 1}
    rt = runtime_with(app, sink, policy)
    add_recipients(session, {"fast-a.test": 60, "fast-b.test": 60, "slow.test": 60})
    deferred = {f"user{i}@slow.test" for i in range(0, 60, 6)}
    sink.defer_once.update(dict.fromkeys(deferred, "421 4.7.0 Try again later"))
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    assert wave["batches"] == 1
    outcome = send_batch(rt, campaign.id, wave["wave_id"], 0)

    # Everyone exactly once in the end, the ledger agrees, the deferred ones took a second attempt.
    counts = Counter(r.rcpt for r in sink.received)
    assert len(counts) == 180 and set(counts.values()) == {1}
    assert {a for _, a in sink.deferred} == deferred
    session.expire_all()
    assert Counter(session.scalars(sa.select(Send.state))) == {"sent": 180}
    attempts = dict(session.execute(sa.select(Contact.email, Send.attempts).join(Send)).all())
    assert {e for e, n in attempts.items() if n == 2} == deferred
    assert (outcome.sent, outcome.retry_in, outcome.throttled) == (180, 0.0, 0)

    # The slow domain stayed within its limit: in any window, at most burst + rate * window
    # (with a little slack for the gap between taking a token and the server's receive time).
    slow = sorted(r.at for r in sink.received if r.rcpt.endswith("@slow.test"))
    for window in (0.25, 0.5, 1.0):
        assert max_in_window(slow, window) <= 5 + 40 * window * 1.1 + 2
    assert slow[-1] - slow[0] >= (60 - 5) / 40 / 1.1

    # The other domains were not held back: all of them arrived before the slow domain's first
    # message past its burst, and before any deferred message's retry.
    fast = [r.at for r in sink.received if not r.rcpt.endswith("@slow.test")]
    retried = min(r.at for r in sink.received if r.rcpt in deferred)
    assert max(fast) < slow[5] and max(fast) < retried


def test_a_batch_held_longer_than_the_inline_wait_is_rescheduled_and_progress_says_why(
    app: Any, session: Session, sink: RecordingSink
) -> None:
    slow = {**SLOW, "rate_per_second": 0.5, "burst": 3}
    rt = runtime_with(
        app, sink, {"groups": {"slow": slow}, "max_inline_wait_seconds": 0.5, "deferral_pause_seconds": 120}
    )
    add_recipients(session, {"slow.test": 10, "fast.test": 10})
    sink.defer_once["user1@slow.test"] = "421 4.7.0 Try again later"  # the server's: pauses the domain
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    rt.redis.delete(*rt.redis.keys("rq:*"))
    result = send_batch_job(campaign.id, wave["wave_id"], 0)
    assert result["sent"] == 12 and result["throttled"] == 8 and result["retry_in"] > 0.5
    progress = campaign_progress(session, campaign.id)
    assert progress["delivery"] == {
        "sent": 12,
        "queued": 0,
        "throttled": 7,
        "deferred": 1,
        "quiet_hours": 0,
        "failed": 0,
    }
    # The campaign page's progress line says so too.
    from app.auth import create_user
    from app.extensions import db
    from models import Role

    with app.test_request_context():
        create_user("m@example.com", "correct horse battery staple", Role.marketer)
        db().commit()
    client = app.test_client()
    client.post("/login", data={"email": "m@example.com", "password": "correct horse battery staple"})
    line = client.get(f"/campaigns/{campaign.id}/progress").json["text"]
    assert "7 throttled, 1 deferred" in line
    # The batch comes back by itself when the throttle allows, not on rq's retry count.
    scheduled = ScheduledJobRegistry(queue=queues.queue(rt, queues.SENDING)).get_job_ids()
    assert len(scheduled) == 1 and scheduled[0].startswith(f"send-{campaign.id}-{wave['wave_id']}-0-at-")
    assert resume_open_waves(rt) == 0  # the scheduled follow-up is the batch's live job: no second one


def test_the_hourly_cap_and_the_warm_up_plan_bind_every_worker(redis: Redis) -> None:
    today = datetime.now(UTC).date()
    warm = ThrottlePolicy.from_mapping(
        {
            "warmup": {"start": today.isoformat(), "daily": [25, 50]},
            "other": {"rate_per_second": 1000, "burst": 1000},
        }
    )
    assert warm is not None and warm.warmups["*"].cap_on(today) == 25
    first, second = Throttle(redis, warm), Throttle(redis, warm)  # two workers, one Redis
    a = first.admit({"other:a.test": 20})
    b = second.admit({"other:b.test": 20})
    assert a.granted == {"other:a.test": 20} and b.granted == {"other:b.test": 5}
    assert b.wait_seconds > 0 and b.wait_seconds <= 86400  # until the next UTC day
    # A plan per sending domain: a new domain warms up while an established one is not held back.
    per_domain = ThrottlePolicy.from_mapping(
        {
            "warmup": {"new.example": {"start": today.isoformat(), "daily": [3, 6]}},
            "other": {"rate_per_second": 1000, "burst": 1000},
        }
    )
    assert per_domain is not None
    throttle = Throttle(redis, per_domain)
    assert throttle.admit({"other:c.test": 10}, sender_domain="new.example").granted == {"other:c.test": 3}
    assert throttle.admit({"other:c.test": 10}, sender_domain="old.example").granted == {"other:c.test": 10}
    redis.flushdb()
    hourly = ThrottlePolicy.from_mapping(
        {"hourly_cap": 3600, "other": {"rate_per_second": 10_000, "burst": 10_000}}
    )
    assert hourly is not None
    c = Throttle(redis, hourly).admit({"other:a.test": 5000})
    assert c.granted == {"other:a.test": 3600} and 0.5 <= c.wait_seconds <= 2  # one token a second


def test_bad_throttle_settings_say_where() -> None:
    from campaigns.errors import InputError

    with pytest.raises(InputError) as caught:
        ThrottlePolicy.from_mapping({"groups": {"gmail": {"rate_per_second": "fast"}}})
    assert caught.value.where == "THROTTLE.groups.gmail.rate_per_second"
    with pytest.raises(InputError) as caught:
        ThrottlePolicy.from_mapping({"warmup": {"daily": [10]}})
    assert caught.value.where == "THROTTLE.warmup.*"
    with pytest.raises(InputError) as caught:
        ThrottlePolicy.from_mapping({"warmup": {"shop.example": {"start": "soon", "daily": [10]}}})
    assert caught.value.where == "THROTTLE.warmup.shop.example"
    assert ThrottlePolicy.from_mapping({"enabled": False}) is None


def test_connections_per_domain_group_are_shared_by_every_worker(redis: Redis) -> None:
    policy = ThrottlePolicy.from_mapping({"groups": {"corp": {"domains": ["corp.test"], "concurrency": 3}}})
    assert policy is not None
    host_a, host_b = Throttle(redis, policy), Throttle(redis, policy)
    a = host_a.lease(["corp", "other:x.test"], 4, "host-a:1")
    assert len(a["corp"]) == 3 and len(a["other:x.test"]) == 4  # other: 4 connections by default
    b = host_b.lease(["corp"], 4, "host-b:7")
    assert b == {"corp": []}  # all three are in use on host A
    assert host_a.lease(["corp"], 4, "host-a:1") == {"corp": a["corp"]}  # keeping its own is free
    host_a.release(["corp", "other:x.test"], 4, "host-a:1")
    assert len(host_b.lease(["corp"], 2, "host-b:7")["corp"]) == 2  # at most its own 2 lanes
