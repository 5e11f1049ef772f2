"""Every message the product sends (a campaign's, a test send to seeds, a double opt-in confirmation)
comes out of the one builder: it parses without defects, its DKIM signature verifies with dkimpy,
its line ends are CRLF only, it has a Date and a Message-ID at the sending domain. Test sends honour
the suppression list (an explicit override is audited)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import dkim
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.runtime import Runtime
from campaigns.sending import bounces
from campaigns.sending.dkim import create_key, dkim_txt
from models import AuditEntry, Contact
from tests.campaigns.sending.sink import RecordingSink, running
from tests.campaigns.sending.test_deliverability import send_wave
from tests.factories import add_campaign, add_contacts, add_template

LONG_SUBJECT = "Les meilleures idées de la semaine pour vous — {{ contact.first_name }} — 🌿 " * 3


@pytest.fixture()
def sink(app: Any) -> Iterator[RecordingSink]:
    with running(RecordingSink()) as s:
        yield s


@pytest.fixture()
def rt(app: Any, sink: RecordingSink) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    runtime.settings = dataclasses.replace(
        runtime.settings, smtp_url=sink.url, bounce_domain="bounce.example.com"
    )
    return runtime


@pytest.fixture()
def dns(session: Session) -> Any:
    """DKIM keys for the campaign's domain and the confirmations' (the base URL's host)."""
    records = {}
    for domain in ("example.com", "mailramp.test"):
        key = create_key(session, domain, "mr1")
        records[f"mr1._domainkey.{domain}.".encode()] = dkim_txt(key.private_key_pem.encode()).encode()
    session.commit()
    return lambda name, timeout=5: records.get(name, b"")


def well_formed(data: bytes, dns: Any, domain: str) -> EmailMessage:
    assert re.search(rb"(?<!\r)\n", data) is None, "a bare LF"
    assert re.search(rb"\r(?!\n)", data) is None, "a bare CR"
    assert dkim.verify(data, dnsfunc=dns), "DKIM does not verify"
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    assert msg["Date"] is not None and msg["Date"].datetime is not None
    assert str(msg["Message-ID"]).endswith(f"@{domain}>")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    return msg


def html_of(msg: EmailMessage) -> str:
    return msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


def assert_campaign_shape(msg: EmailMessage) -> None:
    html = html_of(msg)
    assert html.index(">Unsubscribe</a>") < html.lower().rindex("</body>")
    links = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
    assert links[0].startswith("http://mailramp.test/t/u/")
    assert links[1].startswith("mailto:unsubscribe+") and "@bounce.example.com" in links[1]
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_campaign_messages_are_well_formed_and_signed(
    rt: Runtime, session: Session, sink: RecordingSink, dns: Any
) -> None:
    add_contacts(session, 3, name="Zoë Ünïcode")
    template = add_template(session, subject=LONG_SUBJECT)
    send_wave(rt, session, add_campaign(session, template.id, from_name="Boutique Éloïse").id)
    assert len(sink.received) == 3
    for received in sink.received:
        msg = well_formed(received.data, dns, "example.com")
        assert_campaign_shape(msg)
        assert str(msg["Subject"]).startswith("Les meilleures idées") and "\n" not in str(msg["Subject"])
        assert b"\r\n " in received.data.split(b"\r\n\r\n", 1)[0]  # the long subject is folded, with CRLF


def test_test_sends_are_well_formed_and_signed(
    rt: Runtime, session: Session, sink: RecordingSink, dns: Any, api: Any
) -> None:
    add_contacts(session, 1)
    campaign = add_campaign(session, add_template(session, subject=LONG_SUBJECT).id)
    answer = api.post(f"/api/v1/campaigns/{campaign.id}/test-sends", json={"emails": ["seed@agency.example"]})
    assert answer.status_code == 200 and answer.json["sent"] == 2
    for received in sink.received:
        msg = well_formed(received.data, dns, "example.com")
        assert_campaign_shape(msg)
        assert str(msg["X-Mailramp-Test"]) in ("control", "ai")


def test_confirmation_emails_are_well_formed_and_signed(
    rt: Runtime, session: Session, sink: RecordingSink, dns: Any, api: Any
) -> None:
    answer = api.post(
        "/api/v1/signups", json={"email": "zoe@example.org", "name": "Zoë", "double_opt_in": True}
    )
    assert answer.status_code == 201 and answer.json["state"] == "pending"
    [received] = sink.received
    msg = well_formed(received.data, dns, "mailramp.test")
    assert str(msg["From"]) == "no-reply@mailramp.test" and str(msg["To"]) == "zoe@example.org"
    assert str(msg["Auto-Submitted"]) == "auto-generated"
    assert "/s/confirm/" in msg.get_content()


def test_test_sends_skip_suppressed_addresses_unless_overridden_and_audited(
    rt: Runtime, session: Session, sink: RecordingSink, api: Any
) -> None:
    add_contacts(session, 3)
    policy_ = bounces.SoftBouncePolicy()
    bounces.apply(
        session,
        bounces.BounceReport(bounces.HARD, "smtp", "550 5.1.1 no such user", None, "person0@example.com"),
        policy_,
    )
    bounces.apply(
        session,
        bounces.BounceReport(bounces.COMPLAINT, "arf", "ARF abuse", None, "person1@example.com"),
        policy_,
    )
    session.commit()
    campaign = add_campaign(session, add_template(session).id)
    seeds = ["person0@example.com", "person1@example.com", "person2@example.com"]
    answer = api.post(f"/api/v1/campaigns/{campaign.id}/test-sends", json={"emails": seeds})
    assert answer.status_code == 200 and answer.json["sent"] == 2
    assert {r.rcpt for r in sink.received} == {"person2@example.com"}
    refused = {r["email"]: r["error"] for r in answer.json["results"] if not r["accepted"]}
    assert set(refused) == {"person0@example.com", "person1@example.com"}
    assert all(e.startswith("not sent: suppressed") for e in refused.values())
    assert (
        session.scalar(sa.select(Contact.status).where(Contact.email == "person1@example.com"))
        == "complained"
    )

    sink.received.clear()
    answer = api.post(
        f"/api/v1/campaigns/{campaign.id}/test-sends", json={"emails": seeds[:1], "include_suppressed": True}
    )
    assert answer.status_code == 200 and answer.json["sent"] == 2
    assert session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "test_send_override")) == 1


def test_no_confirmation_goes_to_a_bounced_or_complained_address(
    rt: Runtime, session: Session, sink: RecordingSink, api: Any
) -> None:
    policy_ = bounces.SoftBouncePolicy()
    for kind, email in ((bounces.HARD, "gone@example.org"), (bounces.COMPLAINT, "angry@example.org")):
        session.add(Contact(email=email, name="", country="", attributes={}, consent=False))
        session.flush()
        bounces.apply(session, bounces.BounceReport(kind, "smtp", "550", None, email), policy_)
    session.commit()
    for email in ("gone@example.org", "angry@example.org", "fresh@example.org"):
        answer = api.post("/api/v1/signups", json={"email": email, "double_opt_in": True})
        assert answer.status_code == 201 and answer.json["state"] == "pending"
    assert [r.rcpt for r in sink.received] == ["fresh@example.org"]
