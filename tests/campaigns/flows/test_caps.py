"""Frequency caps and quiet hours when a flow's send step comes due (campaigns.flows.caps): a step
due in the contact's quiet hours waits at the step for their morning, so the wait after it counts
from the morning; a step over the cap is `skipped` with the reason and the journey goes on. The
set-based pass and the entry-by-entry one decide alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.sending.cap_claims import save_rules
from models import Contact, FlowEntry, Send, simulated_now
from tests.campaigns.flows.helpers import Clock, make_flow, send_step, tick
from tests.conftest import ApiClient, SmtpSink


@pytest.mark.parametrize("path", ["set_based", "one_by_one"])
def test_quiet_hours_hold_the_step_and_the_cap_skips_the_next(
    app: Flask,
    session: Session,
    api: ApiClient,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    if path == "one_by_one":  # the fallback the scheduler takes when the set-based pass fails

        def refuse(*args: object) -> None:
            raise RuntimeError("set-based pass refused")

        monkeypatch.setattr("campaigns.flows.scheduler.advance_batch", refuse)
    rt = app.extensions["mailramp"]
    save_rules(session, {"max_per_24h": 1, "quiet_start": "21:00", "quiet_end": "08:00"}, "t@example.com")
    session.commit()
    make_flow(
        api,
        "Welcome",
        {
            "trigger": {"kind": "contact_created"},
            "steps": [
                send_step(session, "hello", "Hello"),
                {"id": "hour", "type": "wait", "hours": 1},
                send_step(session, "tips", "Tips"),
            ],
        },
    )
    clock = Clock(datetime(2026, 12, 7, 22, 0, tzinfo=UTC))  # 22:00 in London: quiet
    with simulated_now(clock.now):
        made = api.post("/api/v1/contacts", json={"email": "late@example.com", "timezone": "Europe/London"})
        assert made.status_code == 201
    assert tick(rt, clock).deferred == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(Send)) == 0
    session.expire_all()
    assert session.scalar(sa.select(FlowEntry.next_due_at)) == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    clock.advance(hours=10)  # 08:00: the first step goes out
    assert tick(rt, clock).sent == 1
    clock.advance(hours=1)  # 09:00: an hour after it, the second is over the cap of 1 in 24 h
    outcome = tick(rt, clock)
    assert (outcome.sent, outcome.capped) == (0, 1)
    session.expire_all()
    rows = session.execute(
        sa.select(Send.state, Send.error).join(Contact, Contact.id == Send.contact_id).order_by(Send.id)
    ).all()
    assert [tuple(r) for r in rows] == [("sent", ""), ("skipped", "frequency cap: 1 in 24 h")]
    assert session.scalar(sa.select(FlowEntry.state)) == "completed"
    assert [str(m["Subject"]) for m in smtp_sink.messages] == ["Hello"]
