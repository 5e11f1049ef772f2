"""Tracking endpoints: signed tokens, stored click destinations, one-click unsubscribe, ingest."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import STREAM
from campaigns.jobs import start_wave
from campaigns.runtime import Runtime
from campaigns.sending.send import send_batch
from models import Contact, Event, Send
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_contacts, add_template

HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def sent_one(app: Any, session: Session, smtp_sink: SmtpSink) -> tuple[Runtime, str]:
    rt: Runtime = app.extensions["mailramp"]
    add_contacts(session, 1)
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    html = smtp_sink.messages[0].get_body(("html",)).get_content()
    return rt, html


def path_of(url: str) -> str:
    return url.removeprefix("http://mailramp.test")


def test_click_redirects_to_the_stored_destination_and_is_ingested(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    click = next(u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u)
    response = client.get(path_of(click), headers={"User-Agent": HUMAN_UA})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example/best?mr=")
    assert (
        session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0
    )  # nothing written on the request
    report = ingest(rt)
    assert report.stored == 1
    event = session.scalars(sa.select(Event)).one()
    assert (event.kind, event.link_id is not None) == ("click", True)
    assert rt.redis.xlen(STREAM) == 0


def test_tampered_or_unknown_tokens_get_404_and_record_nothing(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    tampered = pixel[:-3] + ("AAA" if not pixel.endswith("AAA") else "BBB")
    forged = TokenSigner("another-secret").sign(TrackingRef("open", 1))
    click_as_open = TokenSigner(rt.settings.secret_key).sign(TrackingRef("click", 1, 1))
    for path in (tampered, f"/t/o/{forged}", f"/t/o/{click_as_open}", "/t/c/garbage", "/t/u/x.1~y"):
        assert client.get(path).status_code == 404, path
    assert rt.redis.xlen(STREAM) == 0
    assert client.get(pixel).status_code == 200


def test_one_click_unsubscribe_stops_future_sends(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, _ = sent_one(app, session, smtp_sink)
    url = smtp_sink.messages[0]["List-Unsubscribe"].split(",")[0].strip("<>")
    assert smtp_sink.messages[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    response = client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 204
    ingest(rt)
    contact = session.scalars(sa.select(Contact)).one()
    session.refresh(contact)
    assert contact.status == "unsubscribed"
    assert session.scalar(sa.select(Send.unsubscribed_at)) is not None


def test_conversion_by_email_through_the_api_counts_once_per_order(
    app: Any, session: Session, smtp_sink: SmtpSink, api: Any
) -> None:
    rt, _ = sent_one(app, session, smtp_sink)
    campaign_id = session.scalar(sa.select(Send.campaign_id))
    body = {"campaign_id": campaign_id, "email": " Person0@EXAMPLE.com ", "value": 42.5, "order_id": "A-1"}
    assert api.post("/api/v1/conversions", json=body).status_code == 202
    assert api.post("/api/v1/conversions", json=body).status_code == 202  # a replay of the same order
    ingest(rt)
    send = session.scalars(sa.select(Send)).one()
    session.refresh(send)
    assert send.revenue == 42.5 and send.converted_at is not None
    bad = api.post("/api/v1/conversions", json={**body, "value": "lots"})
    assert bad.status_code == 400 and bad.get_json()["where"] == "value"
    unknown = api.post("/api/v1/conversions", json={**body, "email": "nobody@example.com"})
    assert unknown.status_code == 400


def test_conversion_token_from_the_click_redirect(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    click = next(u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u)
    location = client.get(path_of(click), headers={"User-Agent": HUMAN_UA}).headers["Location"]
    token = location.split("mr=")[1]
    assert client.post(f"/t/v/{token}", data={"value": "19.99", "order": "B-7"}).status_code == 204
    assert client.post(f"/t/v/{token}", data={"value": "x"}).status_code == 400
    ingest(rt)
    send = session.scalars(sa.select(Send)).one()
    session.refresh(send)
    assert send.revenue == 19.99


def test_events_left_pending_by_a_dead_ingester_are_claimed_again(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    client.get(pixel, headers={"User-Agent": HUMAN_UA})
    from campaigns.events.ingest import ensure_group
    from campaigns.events.tracking import GROUP

    ensure_group(rt.redis)
    # A worker read the event and died before storing it: it stays pending in the group.
    rt.redis.xreadgroup(GROUP, "dead-worker", {STREAM: ">"}, count=10)
    assert ingest(rt, claim_idle_ms=60_000).stored == 0  # not idle long enough yet
    report = ingest(rt, claim_idle_ms=0)
    assert report.stored == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1
