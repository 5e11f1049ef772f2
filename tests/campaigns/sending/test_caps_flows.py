"""Issue 25's target: the frequency cap and quiet hours hold across a flow and a campaign sent the same
day. A flow's send step writes a ledger row that goes through the same send path, so the same batch
check (campaigns.sending.cap_claims.hold_batch) holds it. Time moves only through the clock."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.sending.cap_claims import save_rules
from campaigns.sending.planner import plan_wave
from campaigns.sending.send import send_batch
from models import Campaign, Contact, Send, simulated_now
from tests.campaigns.flows.helpers import Clock, make_flow, send_step, tick
from tests.conftest import ApiClient, SmtpSink
from tests.factories import add_campaign, add_template


def _flow_rows(session: Session) -> dict[str, tuple[str, str, int | None]]:
    session.expire_all()
    rows = session.execute(
        sa.select(Contact.email, Send.state, Send.error, Send.wave_id, Send.campaign_id)
        .join(Contact, Contact.id == Send.contact_id)
        .join(Campaign, Campaign.id == Send.campaign_id)
        .where(Campaign.kind == "flow_step")
    ).all()
    return {e: (s, err, w) for e, s, err, w, _ in rows}


def test_a_flow_after_a_campaign_the_same_day_is_capped_and_waits_for_the_morning(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    save_rules(session, {"max_per_24h": 1, "quiet_start": "21:00", "quiet_end": "08:00"}, "t@example.com")
    session.commit()
    make_flow(
        api,
        "Welcome",
        {"trigger": {"kind": "contact_created"}, "steps": [send_step(session, "hi", "Welcome")]},
    )
    # 10:00 UTC: 11:00 in Paris, 19:00 in Tokyo; both enter the flow and get the campaign
    clock = Clock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    with simulated_now(clock.now):
        for email in ("paris@example.com", "tokyo@example.com"):
            zone = "Europe/Paris" if email.startswith("paris") else "Asia/Tokyo"
            assert api.post("/api/v1/contacts", json={"email": email, "timezone": zone}).status_code == 201
        campaign = add_campaign(session, add_template(session).id, name="Monday news")
        wave, _ = plan_wave(session, campaign.id, None, 1000, clock.now)
        session.commit()
        assert send_batch(rt, campaign.id, wave.id, 0).sent == 2
    tick(rt, clock)  # the flow's step, the same hour: capped for both
    assert {e: r[:2] for e, r in _flow_rows(session).items()} == {
        "paris@example.com": ("skipped", "frequency cap: 1 in 24 h"),
        "tokyo@example.com": ("skipped", "frequency cap: 1 in 24 h"),
    }
    # 13:00 UTC, 22:00 in Tokyo: a new contact there enters the flow and waits for the morning
    clock.advance(hours=3)
    with simulated_now(clock.now):
        assert (
            api.post(
                "/api/v1/contacts", json={"email": "late@example.com", "timezone": "Asia/Tokyo"}
            ).status_code
            == 201
        )
    tick(rt, clock)
    state, error, wave_id = _flow_rows(session)["late@example.com"]
    assert (state, error) == ("queued", "quiet hours: until 08:00 Asia/Tokyo")
    clock.advance(hours=10)  # 23:00 UTC: 08:00 in Tokyo; the batch's come-back job runs then
    flow_campaign = session.scalar(sa.select(Send.campaign_id).where(Send.wave_id == wave_id))
    assert wave_id is not None and flow_campaign is not None
    with simulated_now(clock.now):
        assert send_batch(rt, flow_campaign, wave_id, 0).sent == 1
    assert _flow_rows(session)["late@example.com"][:2] == ("sent", "")
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_sink.messages) == [
        "late@example.com", "paris@example.com", "tokyo@example.com"
    ]  # fmt: skip
