"""Double opt-in end to end through a real SMTP server: the hosted form makes a pending contact and
mails a signed link; a tampered or expired link is refused; the real one confirms, and only then is
the contact mailed by a campaign. Plus the honeypot, the form token, the rate limit and the API."""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from campaigns.jobs import start_wave
from campaigns.privacy.signup import CONFIRM_SALT
from campaigns.sending.send import send_batch
from models import ConsentRecord, Contact
from tests.conftest import ApiClient, SmtpSink
from tests.factories import add_campaign, add_template


class SignedLongAgo(TimestampSigner):
    """Signs as the app does, 73 hours ago: the link's 72 hours are over."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 73 * 3600


WORDING = "Yes, send me the weekly picks. I can unsubscribe at any time."
BASE = "http://mailramp.test"


def make_form(api: ApiClient, **extra: Any) -> dict[str, Any]:
    made = api.post(
        "/api/v1/signup-forms",
        json={
            "slug": "weekly",
            "name": "Weekly picks",
            "wording": WORDING,
            "attributes": {"list": "weekly"},
            "confirm_subject": "Confirm your weekly picks",
            "confirm_text": "Hi! Confirm here: {{ confirm_url }} (valid {{ hours }} hours)",
            **extra,
        },
    )
    assert made.status_code == 201, made.json
    return dict(made.json)


def form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def submit(client: Any, email: str, **extra: str) -> Any:
    page = client.get("/s/weekly")
    data = {
        "email": email,
        "name": "Zoe",
        "consent": "yes",
        "form_token": form_token(page.get_data(as_text=True)),
    }
    return client.post("/s/weekly", data={**data, **extra}, headers={"User-Agent": "Browser/1.0"})


def history(session: Session, email: str) -> list[tuple[str, str]]:
    contact_id = session.scalar(sa.select(Contact.id).where(Contact.email == email))
    rows = session.scalars(
        sa.select(ConsentRecord).where(ConsentRecord.contact_id == contact_id).order_by(ConsentRecord.id)
    )
    return [(r.state, r.method) for r in rows]


def test_signup_form_and_confirmation_link(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    make_form(api)
    client = app.test_client()
    page = client.get("/s/weekly")
    assert page.status_code == 200 and WORDING in page.get_data(as_text=True)
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]  # embeddable
    sent = submit(client, "Zoe@Example.com")
    assert sent.status_code == 200 and "Check your inbox" in sent.get_data(as_text=True)
    zoe = session.scalars(sa.select(Contact)).one()
    assert (zoe.email, zoe.consent, zoe.attributes) == ("zoe@example.com", False, {"list": "weekly"})
    pending = session.scalars(sa.select(ConsentRecord)).one()
    assert (pending.state, pending.method, pending.wording) == ("pending", "signup_form", WORDING)
    assert (
        pending.user_agent == "Browser/1.0" and pending.ip == "127.0.0.1" and pending.source == "form weekly"
    )

    # a campaign now mails nobody: the only contact is not confirmed
    template_id = add_template(session).id
    campaign = add_campaign(session, template_id)
    assert start_wave(app.extensions["mailramp"], campaign.id, None)["planned"] == 0

    [mail] = smtp_sink.messages
    assert mail["To"] == "zoe@example.com" and mail["Subject"] == "Confirm your weekly picks"
    body = mail.get_content()
    assert "valid 72 hours" in body
    link = re.search(r"http://mailramp\.test(/s/confirm/\S+)", body)
    assert link
    path = link.group(1)

    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    for method in (client.get, client.post):
        refused = method(tampered)
        assert refused.status_code == 400 and "not valid" in refused.get_data(as_text=True)
    old = URLSafeTimedSerializer(
        "test-secret-key-not-for-production", salt=CONFIRM_SALT, signer=SignedLongAgo
    )
    token = path.rsplit("/", 1)[1]
    expired = "/s/confirm/" + old.dumps(old.loads(token))
    for method in (client.get, client.post):
        refused = method(expired)
        assert refused.status_code == 400 and "expired" in refused.get_data(as_text=True)
    session.refresh(zoe)
    assert zoe.consent is False

    shown = client.get(path)  # a mail scanner's GET confirms nothing
    assert shown.status_code == 200 and "Yes, subscribe me" in shown.get_data(as_text=True)
    session.refresh(zoe)
    assert zoe.consent is False
    confirmed = client.post(path, headers={"User-Agent": "Phone/2.0"})
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.get_data(as_text=True)
    assert client.post(path).status_code == 200  # twice is harmless
    session.refresh(zoe)
    assert zoe.consent is True and zoe.status == "active"
    assert history(session, "zoe@example.com") == [
        ("pending", "signup_form"),
        ("granted", "confirmation_link"),
    ]
    granted = session.scalars(sa.select(ConsentRecord).order_by(ConsentRecord.id.desc())).first()
    assert granted is not None and granted.wording == WORDING and granted.user_agent == "Phone/2.0"

    # confirmed: the next wave mails them, through the same SMTP server
    rt = app.extensions["mailramp"]
    campaign = add_campaign(session, template_id, name="Weekly picks 2")
    wave = start_wave(rt, campaign.id, None)
    assert wave["planned"] == 1
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    assert [m["To"].addresses[0].addr_spec for m in smtp_sink.messages] == ["zoe@example.com"] * 2


def test_honeypot_token_and_rate_limit(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    make_form(api)
    client = app.test_client()
    bot = submit(client, "bot@example.com", website="http://spam.example")
    assert bot.status_code == 200 and "Check your inbox" in bot.get_data(as_text=True)
    no_token = client.post("/s/weekly", data={"email": "a@example.com", "consent": "yes"})
    assert no_token.status_code == 400 and "could not be verified" in no_token.get_data(as_text=True)
    no_consent = submit(client, "a@example.com", consent="")
    assert no_consent.status_code == 400 and "tick the box" in no_consent.get_data(as_text=True)
    bad_email = submit(client, "a@")
    assert bad_email.status_code == 400 and "not an email address" in bad_email.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0 and smtp_sink.messages == []
    app.config["SIGNUPS_PER_HOUR"] = 5  # four posts so far from this address
    assert submit(client, "b@example.com").status_code == 200
    limited = submit(client, "c@example.com")
    assert limited.status_code == 429 and "Too many" in limited.get_data(as_text=True)
    assert client.get("/s/nope").status_code == 404


def test_api_signups(app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink) -> None:
    pending = api.post(
        "/api/v1/signups", json={"email": "p@example.com", "wording": WORDING, "ip": "192.0.2.1"}
    )
    assert pending.status_code == 201 and pending.json["state"] == "pending"
    assert [m["To"] for m in smtp_sink.messages] == ["p@example.com"]
    assert history(session, "p@example.com") == [("pending", "api")]
    single = api.post("/api/v1/signups", json={"email": "s@example.com", "double_opt_in": False})
    assert single.status_code == 201 and single.json["state"] == "granted"
    assert session.scalar(sa.select(Contact.consent).where(Contact.email == "s@example.com")) is True
    again = api.post("/api/v1/signups", json={"email": "s@example.com"})
    assert again.status_code == 200 and again.json["state"] == "already" and len(smtp_sink.messages) == 1
    bad = api.post("/api/v1/signups", json={"email": "x@"})
    assert bad.status_code == 400 and bad.json["where"] == "email"
    unknown = api.post("/api/v1/signups", json={"email": "q@example.com", "form": "nope"})
    assert unknown.status_code == 400 and unknown.json["where"] == "form"
    dup = api.post("/api/v1/signup-forms", json={"slug": "Bad Slug", "name": "x", "wording": "y"})
    assert dup.status_code == 400 and dup.json["where"] == "slug"
