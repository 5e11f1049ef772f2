"""Hard and soft bounces on the send path, DKIM signatures checked with dkimpy, the plain-text part."""

from __future__ import annotations

import contextlib
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

from campaigns.events.ingest import ingest
from campaigns.jobs import start_wave
from campaigns.runtime import Runtime
from campaigns.sending import send as send_module
from campaigns.sending.bounces import parse_verp, verp_address
from campaigns.sending.dkim import create_key, dkim_txt
from campaigns.sending.send import send_batch
from models import ArmMetric, Bounce, Contact, Send, Suppression
from tests.campaigns.sending.sink import RecordingSink, running
from tests.factories import add_campaign, add_contacts, add_template


@pytest.fixture()
def sink(app: Any) -> Iterator[RecordingSink]:
    with running(RecordingSink()) as s:
        yield s


@pytest.fixture()
def rt(app: Any, sink: RecordingSink) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    runtime.settings = dataclasses.replace(runtime.settings, smtp_url=sink.url)
    return runtime


def send_wave(rt: Runtime, session: Session, campaign_id: int) -> None:
    wave = start_wave(rt, campaign_id, None)
    rt.redis.delete(*rt.redis.keys("rq:*"))  # sent here, in this process
    for batch in range(wave["batches"]):
        with contextlib.suppress(send_module.TemporaryFailure):
            send_batch(rt, campaign_id, wave["wave_id"], batch)
    session.expire_all()


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_550_suppresses_the_contact_at_once_with_the_reply(
    rt: Runtime, session: Session, sink: RecordingSink
) -> None:
    add_contacts(session, 3)
    sink.refuse["person1@example.com"] = "550 5.1.1 no such user here"
    template = add_template(session)
    campaign = add_campaign(session, template.id, ai={"exposure_percent": 50})
    send_wave(rt, session, campaign.id)
    contact = session.scalar(sa.select(Contact).where(Contact.email == "person1@example.com"))
    assert contact is not None and contact.status == "bounced"
    row = session.scalar(sa.select(Suppression).where(Suppression.email == "person1@example.com"))
    assert row is not None and row.reason == "bounce" and "no such user" in row.detail
    # The rollout's bounce metric for the contact's arm, once ingest has read the event.
    ingest(rt)
    session.expire_all()
    send = session.scalar(sa.select(Send).where(Send.contact_id == contact.id))
    assert send is not None and send.state == "failed" and send.bounced_at is not None
    bounced = session.scalars(
        sa.select(ArmMetric.count).where(
            ArmMetric.metric == "bounce", ArmMetric.arm == send.arm, ArmMetric.segment == ""
        )
    ).all()
    assert bounced == [1.0]
    # The next campaign does not mail the address again.
    second = add_campaign(session, template.id, name="Next week")
    sink.received.clear()
    send_wave(rt, session, second.id)
    assert sorted(r.rcpt for r in sink.received) == ["person0@example.com", "person2@example.com"]


def test_soft_bounces_suppress_after_the_configured_number(
    rt: Runtime, session: Session, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(send_module, "MAX_ATTEMPTS", 1)  # every 4xx is the last attempt
    # (no throttle here: its deferral pause would hold the second wave back; see test_throttling)
    rt.settings = dataclasses.replace(
        rt.settings, soft_bounce_limit=2, soft_bounce_days=30, throttle={"enabled": False}
    )
    add_contacts(session, 2)
    sink.refuse["person0@example.com"] = "452 4.2.2 mailbox full"
    template = add_template(session)
    first = add_campaign(session, template.id)
    send_wave(rt, session, first.id)
    contact = session.scalar(sa.select(Contact).where(Contact.email == "person0@example.com"))
    assert contact is not None and contact.status == "active"  # one soft bounce: still mailed
    assert session.scalar(sa.select(sa.func.count()).select_from(Bounce).where(Bounce.kind == "soft")) == 1
    second = add_campaign(session, template.id, name="Second")
    send_wave(rt, session, second.id)
    session.refresh(contact)
    assert contact.status == "bounced"
    row = session.scalar(sa.select(Suppression).where(Suppression.email == "person0@example.com"))
    assert row is not None and row.detail.startswith("2 soft bounces within 30 days")
    assert [r.rcpt for r in sink.received].count("person1@example.com") == 2


def test_messages_carry_a_dkim_signature_dkimpy_verifies(
    rt: Runtime, session: Session, sink: RecordingSink
) -> None:
    key = create_key(session, "example.com", "mr1")
    session.commit()
    record = dkim_txt(key.private_key_pem.encode()).encode()
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record if name == b"mr1._domainkey.example.com." else b""

    add_contacts(session, 4)
    send_wave(rt, session, add_campaign(session, add_template(session).id).id)
    assert len(sink.received) == 4
    for received in sink.received:
        assert dkim.verify(received.data, dnsfunc=dns)
        signature = parsed(received.data)["DKIM-Signature"]
        signed = {
            h.strip().lower()
            for h in re.search(r"h=([^;]+)", signature.replace("\r\n", "").replace(" ", ""))
            .group(1)
            .split(":")
        }  # type: ignore[union-attr]
        assert {
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        } <= signed
    assert set(asked) == {b"mr1._domainkey.example.com."}
    # A relay that rewrites a signed header breaks the signature.
    tampered = sink.received[0].data.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"
    )
    assert tampered != sink.received[0].data and not dkim.verify(tampered, dnsfunc=dns)


def test_the_plain_text_part_carries_every_tracked_link_and_the_unsubscribe_url(
    rt: Runtime, session: Session, sink: RecordingSink
) -> None:
    add_contacts(session, 1)
    send_wave(rt, session, add_campaign(session, add_template(session).id).id)
    msg = parsed(sink.received[0].data)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    html_links = {u for u in re.findall(r'href="([^"]+)"', html)}
    text_links = set(re.findall(r"https?://\S+?(?=[)\s])", text))
    assert html_links and html_links <= text_links
    assert all(u.startswith("http://mailramp.test/t/") for u in text_links)
    unsubscribe = msg["List-Unsubscribe"].split(",")[0].strip("<>")
    assert unsubscribe in text and "shop now (http://mailramp.test/t/c/" in text


def test_the_envelope_sender_is_a_signed_verp_address(
    rt: Runtime, session: Session, sink: RecordingSink
) -> None:
    rt.settings = dataclasses.replace(rt.settings, bounce_domain="bounces.example.com")
    add_contacts(session, 2)
    campaign = add_campaign(session, add_template(session).id)
    send_wave(rt, session, campaign.id)
    sends = dict(
        session.execute(sa.select(Contact.email, Send.id).join(Send, Send.contact_id == Contact.id)).all()
    )
    for received in sink.received:
        assert received.mail_from == verp_address(
            rt.settings.secret_key, sends[received.rcpt], "bounces.example.com"
        )
        assert parse_verp(rt.settings.secret_key, received.mail_from) == sends[received.rcpt]
    forged = sink.received[0].mail_from.replace("bounce+", "bounce+9")
    assert parse_verp(rt.settings.secret_key, forged) is None


def test_dkim_cli_creates_a_key_and_prints_the_dns_records(app: Any, session: Session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["dkim", "create", "Shop.Example", "--selector", "s1", "--spf-include", "relay.example"]
    )
    assert result.exit_code == 0, result.output
    key_line = next(
        line for line in result.output.splitlines() if line.startswith("s1._domainkey.shop.example.")
    )
    assert '"v=DKIM1; k=rsa; p=' in key_line
    assert 'shop.example. 3600 IN TXT "v=spf1 a mx include:relay.example ~all"' in result.output
    assert '_dmarc.shop.example. 3600 IN TXT "v=DMARC1; p=none' in result.output
    again = runner.invoke(args=["dkim", "create", "shop.example"])
    assert again.exit_code != 0 and "already has a DKIM key" in again.output
    bad = runner.invoke(args=["dkim", "create", "not a domain"])
    assert bad.exit_code != 0 and "domain: not a domain name" in bad.output
    records = runner.invoke(args=["dkim", "records", "shop.example"])
    assert records.exit_code == 0 and key_line in records.output
    # The inbound bounce server needs the domain it receives for.
    inbound = runner.invoke(args=["inbound", "--port", "0"])
    assert inbound.exit_code != 0 and "set BOUNCE_DOMAIN" in inbound.output


def test_view_in_browser_shows_the_email_with_tracked_links_and_counts_no_open(
    rt: Runtime, session: Session, sink: RecordingSink, client: Any
) -> None:
    from tests.factories import add_catalog

    add_catalog(session, add_contacts(session, 2))
    send_wave(
        rt,
        session,
        add_campaign(
            session,
            add_template(session).id,
            ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"},
        ).id,
    )
    msg = parsed(sink.received[0].data)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    web = re.search(r'href="(http://mailramp.test/t/w/[^"]+)">View this email in your browser', html)
    assert web is not None and web.group(1) in text
    rt.redis.delete("mailramp:events")
    page = client.get(web.group(1).removeprefix("http://mailramp.test"))
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    body = page.get_data(as_text=True)
    assert "/t/c/" in body and ">Item " in body  # the AI content, its links tracked as clicks
    assert "/t/o/" not in body and rt.redis.xlen("mailramp:events") == 0  # no pixel, no open
    assert client.get("/t/w/123~forged").status_code == 404


def test_test_sends_reach_the_seed_list_in_both_arms_and_count_nowhere(
    rt: Runtime, session: Session, sink: RecordingSink, api: Any
) -> None:
    from tests.factories import add_catalog

    add_catalog(session, add_contacts(session, 3))
    campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 10})
    answer = api.post(
        f"/api/v1/campaigns/{campaign.id}/test-sends",
        json={"emails": ["person1@example.com", "Seed@Agency.example"]},
    )
    assert answer.status_code == 200 and answer.json["sent"] == 4
    got = {(r.rcpt, parsed(r.data)["X-Mailramp-Test"]): parsed(r.data) for r in sink.received}
    assert set(got) == {
        (e, arm) for e in ("person1@example.com", "seed@agency.example") for arm in ("control", "ai")
    }
    for (_, arm), msg in got.items():
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert msg["Subject"].startswith("[Test: AI]" if arm == "ai" else "[Test: control]")
        assert (">Item " in html) == (arm == "ai") and ("shop now" in html) == (arm == "control")
    assert session.scalar(sa.select(sa.func.count()).select_from(Send)) == 0  # no ledger row: counted nowhere
    bad = api.post(f"/api/v1/campaigns/{campaign.id}/test-sends", json={"emails": ["ok@example.com", "nope"]})
    assert bad.status_code == 400 and bad.json["where"] == "emails[1]"
