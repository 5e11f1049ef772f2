"""Flows on real parts: signup API, confirmation link, scheduler, rq worker, ledger, SMTP server.
Time moves only through the scheduler's clock; the send jobs run in a burst worker."""

from __future__ import annotations

import re
from collections import Counter

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from models import Campaign, FlowEntry, Send
from tests.campaigns.flows.helpers import make_flow, send_step, start_clock, tick
from tests.conftest import ApiClient, SmtpSink


def subjects_to(sink: SmtpSink, address: str) -> list[str]:
    """What the flow sent (the confirmation request is the signup's, not the flow's)."""
    return [
        str(m["Subject"])
        for m in sink.messages
        if m["To"].addresses[0].addr_spec == address and not str(m["Subject"]).startswith("Please confirm")
    ]


def test_confirmed_contact_gets_the_welcome_series_at_its_delays(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    flow = make_flow(
        api,
        "Welcome",
        {
            "trigger": {"kind": "contact_confirmed"},
            "steps": [
                send_step(session, "hello", "Welcome 1"),
                {"id": "day1", "type": "wait", "days": 1},
                send_step(session, "tips", "Welcome 2"),
                {"id": "day3", "type": "wait", "days": 2},
                send_step(session, "offer", "Welcome 3"),
            ],
        },
    )
    assert api.post("/api/v1/signups", json={"email": "new@example.com"}).json["state"] == "pending"
    [confirmation] = smtp_sink.messages
    link = re.search(r"http://mailramp\.test(/s/confirm/\S+)", confirmation.get_content())
    assert link
    assert tick(rt, start_clock()).advanced == 0  # not confirmed yet: not in the flow
    assert app.test_client().post(link.group(1)).status_code == 200
    assert app.test_client().post(link.group(1)).status_code == 200  # confirming twice enters once
    clock = start_clock()

    assert tick(rt, clock).sent == 1
    assert subjects_to(smtp_sink, "new@example.com") == ["Welcome 1"]
    clock.advance(hours=23, minutes=59)
    assert tick(rt, clock).sent == 0
    clock.advance(minutes=1)
    assert tick(rt, clock).sent == 1
    assert subjects_to(smtp_sink, "new@example.com") == ["Welcome 1", "Welcome 2"]
    clock.advance(days=1)
    tick(rt, clock)
    assert subjects_to(smtp_sink, "new@example.com") == ["Welcome 1", "Welcome 2"]
    clock.advance(days=1)
    assert tick(rt, clock).completed == 1
    assert subjects_to(smtp_sink, "new@example.com") == ["Welcome 1", "Welcome 2", "Welcome 3"]

    # each step went through the send ledger of its own hidden campaign, and is tracked there
    sends = session.execute(
        sa.select(Campaign.kind, Campaign.series, Send.state, Send.message_id).join(Campaign)
    ).all()
    assert [(k, s, st) for k, s, st, _ in sends] == [
        ("flow_step", f"flow:{flow['id']}:hello", "sent"),
        ("flow_step", f"flow:{flow['id']}:tips", "sent"),
        ("flow_step", f"flow:{flow['id']}:offer", "sent"),
    ]
    assert all(m["Message-ID"] for m in smtp_sink.messages[1:])
    assert api.get("/api/v1/campaigns").json["campaigns"] == []  # hidden from the campaign list
    [entry] = api.get(f"/api/v1/flows/{flow['id']}/entries").json["entries"]
    assert (entry["state"], entry["step_id"], entry["next_due_at"]) == ("completed", None, None)
    assert api.get(f"/api/v1/flows/{flow['id']}").json["entries"] == {"completed": 1}
    clock.advance(days=30)
    assert tick(rt, clock).advanced == 0  # nothing is sent twice


def cart_flow(api: ApiClient, session: Session) -> dict[str, object]:
    return make_flow(
        api,
        "Abandoned cart",
        {
            "trigger": {"kind": "event", "name": "added_to_cart"},
            "steps": [
                {"id": "grace", "type": "wait", "hours": 4},
                send_step(session, "reminder", "You left something"),
            ],
            "exit_conditions": [{"event": "purchase"}],
        },
    )


def test_added_to_cart_without_purchase_gets_the_reminder_with_one_does_not(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    cart_flow(api, session)
    for email in ("keeps@example.com", "buys@example.com", "late@example.com"):
        assert api.post("/api/v1/contacts", json={"email": email}).status_code == 201
    for email in ("keeps@example.com", "buys@example.com", "late@example.com"):
        posted = api.post(
            "/api/v1/contact-events",
            json={
                "name": "added_to_cart",
                "email": email,
                "key": f"cart-{email}",
                "properties": {"sku": "A1"},
            },
        )
        assert posted.status_code == 202 and posted.json["recorded"] is True
    replay = api.post(
        "/api/v1/contact-events",
        json={"name": "added_to_cart", "email": "keeps@example.com", "key": "cart-keeps@example.com"},
    )
    assert replay.status_code == 202 and replay.json["recorded"] is False  # the same event, once
    clock = start_clock()
    assert tick(rt, clock).advanced == 3  # all three wait now
    bought = api.post("/api/v1/contact-events", json={"name": "purchase", "email": "buys@example.com"})
    assert bought.status_code == 202
    clock.advance(hours=3)
    assert tick(rt, clock).sent == 0
    clock.advance(hours=1)
    assert tick(rt, clock).sent == 2
    assert smtp_sink.messages and {m["To"].addresses[0].addr_spec for m in smtp_sink.messages} == {
        "keeps@example.com",
        "late@example.com",
    }
    states = Counter((e.state, e.exit_reason) for e in session.scalars(sa.select(FlowEntry)).all())
    assert states == {("completed", ""): 2, ("exited", "exit condition: purchase"): 1}


def test_a_purchase_between_queueing_and_sending_is_not_mailed(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    """The exit is checked before each send, and a queued reminder whose journey ended is skipped."""
    from campaigns.flows.scheduler import run_due

    rt = app.extensions["mailramp"]
    cart_flow(api, session)
    api.post("/api/v1/contacts", json={"email": "quick@example.com"})
    api.post("/api/v1/contact-events", json={"name": "added_to_cart", "email": "quick@example.com"})
    clock = start_clock()
    tick(rt, clock)
    clock.advance(hours=4)
    assert run_due(rt, clock=clock).sent == 1  # queued in the ledger, not sent yet
    api.post("/api/v1/contact-events", json={"name": "purchase", "email": "quick@example.com"})
    tick(rt, clock)
    assert session.scalars(sa.select(Send.state)).all() == ["skipped"]
    assert smtp_sink.messages == []
