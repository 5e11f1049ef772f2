"""Entries: re-entry rules, branches, versions, bad records failing alone, several schedulers at once,
and the time-driven triggers. Real database, Redis, rq worker and SMTP server; time from the clock."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.flows.scheduler import run_due
from campaigns.flows.time_triggers import run_time_triggers
from campaigns.flows.triggers import record_event
from models import Campaign, Contact, Flow, FlowEntry, FlowVersion, Send, simulated_now
from tests.campaigns.flows.helpers import make_flow, send_step, start_clock, tick
from tests.conftest import ApiClient, SmtpSink
from tests.factories import add_contacts


def browsed(session: Session, contact_id: int, key: str) -> bool:
    recorded = record_event(session, contact_id, "browsed", key=key)
    session.commit()
    return recorded


def recipients(sink: SmtpSink) -> Counter[str]:
    return Counter(m["To"].addresses[0].addr_spec for m in sink.messages)


def test_re_entry_never_after_days_always(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    for rule, extra in (("never", {}), ("after_days", {"days": 7}), ("always", {})):
        make_flow(
            api,
            f"Browse {rule}",
            {
                "trigger": {"kind": "event", "name": "browsed"},
                "steps": [send_step(session, f"s-{rule.replace('_', '-')}", f"Seen it ({rule})")],
                "re_entry": {"rule": rule, **extra},
            },
        )
    [contact] = add_contacts(session, 1)
    clock = start_clock()
    with simulated_now(clock.now):
        assert browsed(session, contact, "k1")
    tick(rt, clock)
    with simulated_now(clock.advance(hours=1)):
        assert browsed(session, contact, "k2")
        assert not browsed(session, contact, "k2")  # the same event acts once
    tick(rt, clock)
    with simulated_now(clock.advance(days=8)):
        assert browsed(session, contact, "k3")
    tick(rt, clock)
    subjects = Counter(str(m["Subject"]) for m in smtp_sink.messages)
    assert subjects == {"Seen it (never)": 1, "Seen it (after_days)": 2, "Seen it (always)": 3}
    # each generation sent through its own hidden campaign: one ledger row per (campaign, contact)
    generations = session.execute(
        sa.select(Campaign.series, sa.func.count())
        .join(Send)
        .group_by(Campaign.series)
        .order_by(Campaign.series)
    ).all()
    assert [n for _, n in generations] == [1, 2, 3]  # flows 1, 2, 3: never, after_days, always


def test_branch_on_open_and_versions_keep_journeys(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    definition: dict[str, Any] = {
        "trigger": {"kind": "event", "name": "browsed"},
        "steps": [
            send_step(session, "first", "First"),
            {"id": "day", "type": "wait", "days": 1},
            {"id": "opened", "type": "branch", "condition": {"event": "opened"}, "then": "thanks"},
            send_step(session, "nudge", "Nudge"),
            {"id": "stop", "type": "exit", "reason": "nudged"},
            send_step(session, "thanks", "Thanks for reading"),
        ],
    }
    flow = make_flow(api, "Browse", definition)
    opener, ignorer, late = add_contacts(session, 3)
    clock = start_clock()
    with simulated_now(clock.now):
        browsed(session, opener, "a")
        browsed(session, ignorer, "b")
    tick(rt, clock)
    session.execute(
        sa.update(Send).where(Send.contact_id == opener).values(opened_at=clock.now + timedelta(hours=2))
    )
    session.commit()
    # an edit while they wait: their journeys keep version 1; a new entry follows version 2
    definition["steps"][3] = send_step(session, "nudge", "Nudge v2")
    assert api.patch(f"/api/v1/flows/{flow['id']}", json={"definition": definition}).json["version"] == 2
    with simulated_now(clock.advance(hours=1)):
        browsed(session, late, "c")
    clock.advance(days=1)
    tick(rt, clock)  # the first two branch; the late one gets its first email and waits a day
    clock.advance(days=1)
    tick(rt, clock)
    by = {
        c.id: [str(m["Subject"]) for m in smtp_sink.messages if m["To"].addresses[0].addr_spec == c.email]
        for c in session.scalars(sa.select(Contact))
    }
    assert by[opener] == ["First", "Thanks for reading"]
    assert by[ignorer] == ["First", "Nudge"]
    assert by[late] == ["First", "Nudge v2"]
    ends = {e.contact_id: (e.version, e.state, e.exit_reason) for e in session.scalars(sa.select(FlowEntry))}
    assert ends == {
        opener: (1, "completed", ""),
        ignorer: (1, "exited", "nudged"),
        late: (2, "exited", "nudged"),
    }


def test_a_bad_record_fails_alone_then_exits(app: Flask, session: Session, api: ApiClient) -> None:
    rt = app.extensions["mailramp"]
    good = make_flow(
        api,
        "Good",
        {"trigger": {"kind": "event", "name": "browsed"}, "steps": [send_step(session, "g", "G")]},
    )
    bad = make_flow(
        api, "Bad", {"trigger": {"kind": "event", "name": "browsed"}, "steps": [send_step(session, "b", "B")]}
    )
    session.execute(
        sa.update(FlowVersion).where(FlowVersion.flow_id == bad["id"]).values(definition={"steps": "broken"})
    )
    session.commit()
    contacts = add_contacts(session, 3)
    clock = start_clock()
    with simulated_now(clock.now):
        for n, contact in enumerate(contacts):
            browsed(session, contact, f"k{n}")
    first = tick(rt, clock)
    assert (first.sent, first.failed) == (3, 3)
    for _ in range(5):
        clock.advance(hours=2)
        tick(rt, clock)
    states = Counter((e.flow_id, e.state) for e in session.scalars(sa.select(FlowEntry)))
    assert states == {(good["id"], "completed"): 3, (bad["id"], "exited"): 3}
    [reason] = set(session.scalars(sa.select(FlowEntry.exit_reason).where(FlowEntry.flow_id == bad["id"])))
    assert reason.startswith("error: ValidationError")
    # a broken flow never stops what records its trigger: the contact is created, nobody enters
    broken = make_flow(
        api, "Broken", {"trigger": {"kind": "contact_created"}, "steps": [send_step(session, "x", "X")]}
    )
    session.execute(sa.update(Flow).where(Flow.id == broken["id"]).values(definition={"steps": 1}))
    session.commit()
    assert api.post("/api/v1/contacts", json={"email": "fine@example.com"}).status_code == 201
    assert session.scalar(sa.select(sa.func.count()).where(FlowEntry.flow_id == broken["id"])) == 0


def test_several_schedulers_advance_each_entry_once(app: Flask, session: Session, api: ApiClient) -> None:
    rt = app.extensions["mailramp"]
    make_flow(
        api,
        "Many",
        {"trigger": {"kind": "event", "name": "browsed"}, "steps": [send_step(session, "m", "M")]},
    )
    contacts = add_contacts(session, 120)
    clock = start_clock()
    with simulated_now(clock.now):
        for contact in contacts:
            record_event(session, contact, "browsed", key=f"k{contact}")
    session.commit()
    outcomes = []

    def scheduler() -> None:
        outcomes.append(run_due(rt, clock=clock, batch=10))

    threads = [threading.Thread(target=scheduler) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_due(rt, clock=clock)  # whatever a serialised (SQLite) run left to the next tick
    rows = session.execute(sa.select(Send.contact_id)).scalars().all()
    assert sorted(rows) == sorted(contacts)  # every entry once, none twice
    assert set(session.scalars(sa.select(FlowEntry.state))) == {"completed"}


def test_time_triggers_enter_once(app: Flask, session: Session, api: ApiClient) -> None:
    rt = app.extensions["mailramp"]
    clock = start_clock()
    segment = api.post(
        "/api/v1/segments",
        json={"name": "Pro", "rules": {"field": "attributes.plan", "op": "eq", "value": "pro"}},
    ).json
    steps = [{"id": "w", "type": "wait", "days": 1}]
    make_flow(
        api, "Pro", {"trigger": {"kind": "segment_joined", "segment_id": segment["id"]}, "steps": steps}
    )
    make_flow(
        api,
        "Birthday",
        {"trigger": {"kind": "date_attribute", "attribute": "birthday", "yearly": True}, "steps": steps},
    )
    make_flow(api, "Win-back", {"trigger": {"kind": "inactivity", "days": 30}, "steps": steps})
    today = clock.now.date()
    contacts = add_contacts(session, 4)  # plan: free, pro, free, pro
    session.execute(
        sa.update(Contact)
        .where(Contact.id == contacts[0])
        .values(attributes={"birthday": f"1990-{today:%m-%d}"})
    )
    session.execute(
        sa.update(Contact)
        .where(Contact.id == contacts[2])
        .values(attributes={"birthday": "1990-01-01" if today.month != 1 else "1990-07-01"})
    )
    campaign_id = session.scalar(sa.select(Campaign.id))  # none yet: make one send history by hand
    assert campaign_id is None
    from tests.factories import add_campaign, add_template

    campaign = add_campaign(session, add_template(session).id)
    long_ago, lately = clock.now - timedelta(days=40), clock.now - timedelta(days=5)
    session.add_all(
        [
            Send(campaign_id=campaign.id, contact_id=contacts[2], state="sent", sent_at=long_ago),
            Send(
                campaign_id=campaign.id,
                contact_id=contacts[3],
                state="sent",
                sent_at=long_ago,
                opened_at=lately,
            ),
        ]
    )
    session.commit()
    assert run_time_triggers(rt, clock.now) == 4  # 2 pro, 1 birthday, 1 inactive
    assert run_time_triggers(rt, clock.now) == 0  # the same keys: nobody twice
    entered = Counter(session.execute(sa.select(FlowEntry.trigger_key, FlowEntry.contact_id)).all())
    keys = {key.split(":")[0] for key, _ in entered}
    assert keys == {"segment", "date", "inactive"}
    assert sorted(c for k, c in entered if k.startswith("segment")) == [contacts[1], contacts[3]]
    assert [c for k, c in entered if k.startswith("date")] == [contacts[0]]
    assert [c for k, c in entered if k.startswith("inactive")] == [contacts[2]]
