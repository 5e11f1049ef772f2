"""The mailto: half of List-Unsubscribe: mail to the signed address a message names unsubscribes its
recipient through the inbound server; a forged or altered address does nothing."""

from __future__ import annotations

import re
import smtplib
from email import message_from_bytes, policy
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.sending.unsubscribe_mail import mailto_address, parse
from models import Contact
from tests.campaigns.sending.test_inbound import sent

__all__ = ["sent"]


def test_mail_to_the_list_unsubscribe_mailto_unsubscribes_that_recipient(
    sent: Any,
    session: Session,
) -> None:
    rt, sink, port = sent
    [message] = sink.to("person2@example.com")
    header = str(message_from_bytes(message.data, policy=policy.default)["List-Unsubscribe"])
    mailto = re.search(r"<mailto:([^?>]+)\?subject=unsubscribe>", header)
    assert mailto and mailto.group(1).endswith("@bounces.example.com")
    forged = re.sub(r"\.[0-9a-f]{16}@", ".0000000000000000@", mailto.group(1))
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("person2@example.com", [forged], b"Subject: unsubscribe\r\n\r\n\r\n")
        smtp.sendmail("person2@example.com", [mailto.group(1)], b"Subject: unsubscribe\r\n\r\n\r\n")
    ingest(rt)
    session.expire_all()
    statuses = dict(session.execute(sa.select(Contact.email, Contact.status)).all())
    assert statuses["person2@example.com"] == "unsubscribed"
    assert {s for e, s in statuses.items() if e != "person2@example.com"} == {"active"}


def test_the_address_is_signed_per_send() -> None:
    address = mailto_address("k", 42, "bounces.example.com")
    assert parse("k", address) == 42 and parse("other", address) is None
    assert parse("k", address.replace("+42.", "+43.")) is None and len(address.split("@")[0]) <= 64
