"""The inbound SMTP server (a real aiosmtpd server) reading DSNs and ARF reports sent to the VERP
return path, through ingest to the contact, the suppression list and the per-arm metrics."""

from __future__ import annotations

import dataclasses
import smtplib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.jobs import start_wave
from campaigns.runtime import Runtime
from campaigns.sending.inbound import read_report, start_inbound
from campaigns.sending.send import send_batch
from models import ArmMetric, Bounce, Contact, Send, Suppression
from tests.campaigns.sending.reports import arf, dsn
from tests.campaigns.sending.sink import RecordingSink, running
from tests.conftest import free_port
from tests.factories import add_campaign, add_contacts, add_template


@pytest.fixture()
def sent(app: Any, session: Session) -> Iterator[tuple[Runtime, RecordingSink, int]]:
    """A wave of 4 sent with the VERP return path; yields the runtime, what the sink got, the inbound port."""
    rt: Runtime = app.extensions["mailramp"]
    with running(RecordingSink()) as sink:
        rt.settings = dataclasses.replace(rt.settings, smtp_url=sink.url, bounce_domain="bounces.example.com")
        add_contacts(session, 4)
        campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50})
        wave = start_wave(rt, campaign.id, None)
        rt.redis.delete(*rt.redis.keys("rq:*"))
        send_batch(rt, campaign.id, wave["wave_id"], 0)
        port = free_port()
        controller = start_inbound(rt, "127.0.0.1", port)
        try:
            yield rt, sink, port
        finally:
            controller.stop()


def deliver(port: int, rcpt: str, data: bytes) -> None:
    wire = b"\r\n".join(data.splitlines()) + b"\r\n"  # smtplib sends bytes as they are
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("", [rcpt], wire)


def headers_of(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode()


def test_a_dsn_to_the_verp_address_hard_bounces_the_contact(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person1@example.com")
    deliver(
        port,
        message.mail_from,
        dsn(
            "person1@example.com",
            "failed",
            "5.1.1",
            "550 5.1.1 <person1@example.com>: user unknown",
            headers_of(message.data),
        ),
    )
    assert rt.redis.xlen("mailramp:events") == 1  # pushed at once; stored by ingest
    ingest(rt)
    session.expire_all()
    contact = session.scalar(sa.select(Contact).where(Contact.email == "person1@example.com"))
    assert contact is not None and contact.status == "bounced"
    row = session.scalar(sa.select(Suppression).where(Suppression.email == "person1@example.com"))
    assert row is not None and row.reason == "bounce" and row.detail.startswith("dsn: 5.1.1")
    send = session.scalar(sa.select(Send).where(Send.contact_id == contact.id))
    assert send is not None and send.bounced_at is not None
    metric = session.scalar(
        sa.select(ArmMetric.count).where(
            ArmMetric.metric == "bounce", ArmMetric.arm == send.arm, ArmMetric.segment == ""
        )
    )
    assert metric == 1.0


def test_an_arf_abuse_report_is_a_complaint_found_from_the_quoted_message(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person2@example.com")
    original = f"Return-Path: <{message.mail_from}>\r\n".encode() + message.data
    deliver(port, "fbl@bounces.example.com", arf(original, "person2@example.com"))  # not a VERP address
    ingest(rt)
    session.expire_all()
    contact = session.scalar(sa.select(Contact).where(Contact.email == "person2@example.com"))
    assert contact is not None and contact.status == "complained"
    row = session.scalar(sa.select(Suppression).where(Suppression.email == "person2@example.com"))
    assert row is not None and row.reason == "complaint" and "SomeGenerator" in row.detail
    send = session.scalar(sa.select(Send).where(Send.contact_id == contact.id))
    assert send is not None and send.complained_at is not None


def test_delays_change_nothing_and_soft_failures_are_only_logged(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person3@example.com")
    head = headers_of(message.data)
    deliver(port, message.mail_from, dsn("person3@example.com", "delayed", "4.4.1", "421 try later", head))
    deliver(
        port, message.mail_from, dsn("person3@example.com", "failed", "4.2.2", "452 4.2.2 mailbox full", head)
    )
    ingest(rt)
    session.expire_all()
    contact = session.scalar(sa.select(Contact).where(Contact.email == "person3@example.com"))
    assert contact is not None and contact.status == "active"
    kinds = session.scalars(sa.select(Bounce.kind).where(Bounce.email == "person3@example.com")).all()
    assert kinds == ["soft"]


def test_mail_for_other_domains_is_refused(sent: tuple[Runtime, RecordingSink, int]) -> None:
    _, _, port = sent
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(port, "someone@elsewhere.example", b"Subject: hi\r\n\r\nhello\r\n")


def test_reports_that_are_not_dsn_or_arf_read_as_nothing() -> None:
    assert read_report(b"From: a@b.example\r\nSubject: out of office\r\n\r\nI am away.\r\n") == []
    delayed = dsn("x@example.com", "delayed", "4.4.7", "timeout", "Message-ID: <m@x>\n")
    assert read_report(delayed) == []
    [failed] = read_report(dsn("X@Example.com", "failed", "5.1.1", "550 no such user", "Message-ID: <m@x>\n"))
    assert (failed.kind, failed.email, failed.message_id) == ("hard", "x@example.com", "<m@x>")


def _status_of(session: Session, email: str) -> str:
    session.expire_all()
    return str(session.scalar(sa.select(Contact.status).where(Contact.email == email)))


def test_a_dsn_that_names_no_send_of_ours_is_ignored(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    """Anyone can mail the bounce domain: a report with no VERP address and nothing of ours quoted
    must not suppress the address it names."""
    rt, _, port = sent
    forged = dsn("person1@example.com", "failed", "5.1.1", "550 5.1.1 user unknown", "Subject: x\r\n")
    deliver(port, "postmaster@bounces.example.com", forged)
    ingest(rt)
    assert rt.redis.xlen("mailramp:events") == 0
    assert _status_of(session, "person1@example.com") == "active"
    assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


def test_a_forged_verp_signature_or_another_addresses_message_id_is_ignored(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person2@example.com")
    send_id = int(message.mail_from.split("+", 1)[1].split(".", 1)[0])
    report = dsn("person2@example.com", "failed", "5.1.1", "550 user unknown", "Subject: x\r\n")
    deliver(port, f"bounce+{send_id}.0123456789abcdef@bounces.example.com", report)  # a bad signature
    # person2's real Message-ID, in a report naming person1: not a message sent to that address
    other = dsn("person1@example.com", "failed", "5.1.1", "550 user unknown", headers_of(message.data))
    deliver(port, "postmaster@bounces.example.com", other)
    ingest(rt)
    assert _status_of(session, "person1@example.com") == "active"
    assert _status_of(session, "person2@example.com") == "active"


def test_a_dsn_quoting_our_message_id_for_that_address_is_acted_on(
    sent: tuple[Runtime, RecordingSink, int], session: Session
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person3@example.com")
    report = dsn("person3@example.com", "failed", "5.1.1", "550 user unknown", headers_of(message.data))
    deliver(port, "postmaster@bounces.example.com", report)  # not the VERP address; the Message-ID is ours
    ingest(rt)
    assert _status_of(session, "person3@example.com") == "bounced"
