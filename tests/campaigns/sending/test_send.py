"""The send path on real parts: planner, rq worker, SMTP server, ledger, journal, kill switch."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns.jobs import start_wave
from campaigns.ops.queues import all_queues
from campaigns.runtime import Runtime
from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.journal import SendJournal
from campaigns.sending.send import send_batch
from models import ArmMetric, Contact, Rollout, Segment, Send, Suppression, Wave
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_catalog, add_contacts, add_template


@pytest.fixture()
def rt(app: Any) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    return runtime


def drain(rt: Runtime) -> None:
    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)


def states(session: Session, campaign_id: int) -> Counter[str]:
    rows = session.scalars(sa.select(Send.state).where(Send.campaign_id == campaign_id))
    return Counter(rows)


def test_wave_sends_each_contact_once_with_arms(rt: Runtime, session: Session, smtp_sink: SmtpSink) -> None:
    add_catalog(session, add_contacts(session, 300))
    template = add_template(session)
    campaign = add_campaign(
        session, template.id, ai={"exposure_percent": 30, "holdout_percent": 10, "plan": "manual"}
    )
    wave = start_wave(rt, campaign.id, limit=None)
    assert wave["planned"] == 300
    drain(rt)
    session.expire_all()
    assert states(session, campaign.id) == {"sent": 300}
    recipients = [rcpts[0] for _, rcpts in smtp_sink.envelopes]
    assert len(recipients) == 300 == len(set(recipients))
    arms = Counter(session.scalars(sa.select(Send.arm).where(Send.campaign_id == campaign.id)))
    assert set(arms) <= {"treatment", "control", "holdout"}
    assert 30 < arms["treatment"] < 150 and arms["holdout"] > 5
    planned = session.get(Wave, wave["wave_id"])
    assert planned is not None and (planned.stage_index, planned.exposure_bp) == (0, 3000)
    # Treatment got AI content (recommendations), control got the control block.
    contents = dict(
        session.execute(sa.select(Send.arm, Send.content).where(Send.campaign_id == campaign.id)).all()
    )
    assert contents.get("control") == "control"
    assert contents.get("treatment") == "ai"
    msg = smtp_sink.messages[0]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<http://mailramp.test/t/u/")
    html = msg.get_body(("html",)).get_content()
    assert "http://mailramp.test/t/o/" in html and "http://mailramp.test/t/c/" in html
    assert "https://shop.example/best" not in html  # every link is tracked


def test_running_a_finished_batch_again_sends_nothing(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    add_contacts(session, 20)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    drain(rt)
    outcome = send_batch(rt, campaign.id, wave["wave_id"], 0)
    assert outcome.sent == 0
    assert len(smtp_sink.messages) == 20


def test_waves_slice_the_audience_without_overlap(rt: Runtime, session: Session, smtp_sink: SmtpSink) -> None:
    add_contacts(session, 50)
    campaign = add_campaign(session, add_template(session).id)
    first = start_wave(rt, campaign.id, 10)
    drain(rt)
    second = start_wave(rt, campaign.id, None)
    drain(rt)
    assert (first["planned"], second["planned"]) == (10, 40)
    assert len({r[0] for _, r in smtp_sink.envelopes}) == 50 == len(smtp_sink.envelopes)
    session.expire_all()
    assert session.get(Wave, second["wave_id"]).status == "done"  # type: ignore[union-attr]


def test_journal_marks_accepted_rows_sent_instead_of_resending(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    """A worker killed after the server accepted a message but before the ledger commit."""
    add_contacts(session, 5)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    rt.redis.delete(*rt.redis.keys("rq:*"))  # the worker "died": its jobs are gone
    rows = list(session.scalars(sa.select(Send).where(Send.campaign_id == campaign.id).order_by(Send.id)))
    for row in rows[:2]:
        row.state = "sending"
    session.commit()
    journal = SendJournal(rt.redis, wave["wave_id"], 0)
    journal.append(DeliveryResult(rows[0].id, accepted=True))  # accepted, not yet recorded in the ledger
    outcome = send_batch(rt, campaign.id, wave["wave_id"], 0)
    assert outcome.recovered_from_journal == 1
    assert outcome.sent == 4  # row 1 ("sending", not in the journal) and rows 2-4
    received = {r[0] for _, r in smtp_sink.envelopes}
    journaled = session.get(Contact, rows[0].contact_id)
    assert journaled is not None and journaled.email not in received  # not sent again
    session.expire_all()
    assert states(session, campaign.id) == {"sent": 5}
    assert len(smtp_sink.messages) == 4


def test_cancelling_skips_what_is_queued_and_closes_the_wave(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    from campaigns.sending.planner import cancel_campaign

    add_contacts(session, 30)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    cancel_campaign(session, campaign.id)
    session.commit()
    drain(rt)
    session.expire_all()
    assert states(session, campaign.id) == {"skipped": 30}
    assert smtp_sink.messages == []
    assert session.get(Wave, wave["wave_id"]).status == "done"  # type: ignore[union-attr]


def test_unsubscribed_and_suppressed_contacts_are_skipped(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    ids = add_contacts(session, 4)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    session.execute(sa.update(Contact).where(Contact.id == ids[0]).values(status="unsubscribed"))
    session.add(Suppression(email="person1@example.com", reason="manual"))
    session.commit()
    outcome = send_batch(rt, campaign.id, wave["wave_id"], 0)
    assert (outcome.sent, outcome.skipped) == (2, 2)
    assert sorted(r[0] for _, r in smtp_sink.envelopes) == ["person2@example.com", "person3@example.com"]


def test_refused_recipient_fails_for_good_others_still_sent(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    add_contacts(session, 3)
    smtp_sink.reject.add("person1@example.com")
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    session.expire_all()
    failed = session.scalars(sa.select(Send).where(Send.state == "failed")).all()
    assert len(failed) == 1 and failed[0].error.startswith("550")
    assert states(session, campaign.id) == {"sent": 2, "failed": 1}


def test_kill_switch_reaches_a_running_batch(
    rt: Runtime, session: Session, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout is killed while a batch is sending: every later chunk gets control content."""
    import campaigns.sending.send as send_module

    add_catalog(session, add_contacts(session, 60))
    campaign = add_campaign(
        session,
        add_template(session).id,
        ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"},
    )
    wave = start_wave(rt, campaign.id, None)
    monkeypatch.setattr(send_module, "CHUNK", 20)
    calls = {"n": 0}
    original = send_module.prepare_chunk

    def prepare_then_kill(*args: Any, **kwargs: Any) -> Any:
        prepared = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            with rt.session() as other:
                other.execute(sa.update(Rollout).where(Rollout.id == campaign.rollout_id).values(killed=True))
        return prepared

    monkeypatch.setattr(send_module, "prepare_chunk", prepare_then_kill)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    session.expire_all()
    rows = session.execute(sa.select(Send.id, Send.arm, Send.content).order_by(Send.id)).all()
    assert {(arm, content) for _, arm, content in rows[:20]} == {("treatment", "ai")}
    assert {(arm, content) for _, arm, content in rows[20:]} == {("control", "control")}


def test_campaign_rules_filter_the_recommendations(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    add_catalog(session, add_contacts(session, 20))
    rules = {"categories": ["kitchen"], "max_price": 14}
    campaign = add_campaign(
        session,
        add_template(session).id,
        ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"},
        recommendation_rules=rules,
    )
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    shown = set()
    for message in smtp_sink.messages:
        shown |= set(re.findall(r">Item (\d+)<", message.get_body(("html",)).get_content()))
    # kitchen items are the odd ones (price 5 + i): 1, 3, 5, 7, 9 cost at most 14
    assert shown and shown <= {"1", "3", "5", "7", "9"}


def test_bad_campaign_rules_say_where(session: Session, app: Any) -> None:
    from campaigns.errors import InputError

    with pytest.raises(InputError) as caught:
        add_campaign(session, add_template(session).id, recommendation_rules={"max_price": "cheap"})
    assert caught.value.where == "recommendation_rules.max_price"


def test_report_segments_are_frozen_on_sends_and_aggregated_apart(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    add_catalog(session, add_contacts(session, 40))  # odd contacts are on the pro plan
    pro = Segment(name="Pro plan", rules={"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]})
    session.add(pro)
    session.commit()
    campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50, "plan": "manual"})
    session.execute(
        sa.update(Rollout).where(Rollout.id == campaign.rollout_id).values(report_segments=[pro.id])
    )
    session.commit()
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    session.expire_all()
    labelled = Counter(
        arm
        for arm, segments in session.execute(sa.select(Send.arm, Send.segments))
        if segments == ["Pro plan"]
    )
    assert sum(labelled.values()) == 20
    sent_in_segment = dict(
        session.execute(
            sa.select(ArmMetric.arm, ArmMetric.count).where(
                ArmMetric.segment == "Pro plan", ArmMetric.metric == "sent"
            )
        ).all()
    )
    assert sent_in_segment == {arm: float(n) for arm, n in labelled.items()}


def test_broken_ai_block_fails_closed_to_control(rt: Runtime, session: Session, smtp_sink: SmtpSink) -> None:
    add_catalog(session, add_contacts(session, 10))
    # Passes validation (the sample contact has id 0) but fails for every real contact.
    template = add_template(session, ai_html="{% if contact.id %}{{ 1 / 0 }}{% endif %}")
    campaign = add_campaign(
        session, template.id, ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"}
    )
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    session.expire_all()
    contents = Counter(session.scalars(sa.select(Send.content)))
    assert contents == {"fallback": 10}
    assert len(smtp_sink.messages) == 10


def test_an_ai_campaign_creates_and_starts_its_rollout_through_the_audited_machine(
    session: Session, app: Any
) -> None:
    from models import RolloutAudit

    campaign = add_campaign(
        session, add_template(session).id, ai={"exposure_percent": 20, "holdout_percent": 5, "plan": "manual"}
    )
    rollout = session.get(Rollout, campaign.rollout_id)
    assert rollout is not None and (rollout.state, rollout.stage_index, rollout.holdout_bp) == (
        "ramping",
        0,
        500,
    )
    actions = [a.action for a in session.scalars(sa.select(RolloutAudit).order_by(RolloutAudit.id))]
    assert actions == ["create", "start"]
