"""The outbox page: newest first from the index, 50 a page, search by address and subject, each
message's arm from the send ledger, and a message one click away."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.auth import create_user
from app.extensions import db
from models import Role, Send
from tests.factories import add_campaign, add_contacts, add_template

PASSWORD = "correct horse battery staple"


def test_outbox_pages_searches_and_shows_the_arm(app: Flask, client: FlaskClient, session: Session) -> None:
    with app.test_request_context():
        create_user("v@example.com", PASSWORD, Role.viewer)
        db().commit()
    client.post("/login", data={"email": "v@example.com", "password": PASSWORD})
    ids = add_contacts(session, 60)
    campaign = add_campaign(session, add_template(session).id)
    arms = ["treatment", "control", "holdout"]
    session.add_all(
        Send(campaign_id=campaign.id, contact_id=c, arm=arms[i % 3], state="sent") for i, c in enumerate(ids)
    )
    session.commit()
    emails = [e for (e,) in session.execute(sa.text("SELECT email FROM contacts ORDER BY id"))]
    path = Path(app.instance_path) / "outbox"
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(path), create=True)
    for i, email in enumerate(emails):
        box.add(
            f"From: shop@example.com\r\nTo: Person {i} <{email.upper()}>\r\nSubject: Picks #{i}\r\n"
            f"X-Mailramp-Campaign: {campaign.id}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHi\r\n".encode()
        )
    first = client.get("/outbox").get_data(as_text=True)
    assert "60 messages" in first and first.count('href="/outbox/') == 50
    assert 'aria-label="Page 2"' in first and '<th scope="col">Arm</th>' in first
    second = client.get("/outbox?page=2").get_data(as_text=True)
    assert second.count('href="/outbox/') == 10
    found = client.get(f"/outbox?q={emails[3]}").get_data(as_text=True)  # contact 3: treatment
    assert found.count('href="/outbox/') == 1 and "<td>AI</td>" in found and "Picks #3" in found
    found = client.get(f"/outbox?q={emails[5].upper()}").get_data(as_text=True)
    assert "<td>holdout</td>" in found
    assert "No message matches" in client.get("/outbox?q=nobody-at-all").get_data(as_text=True)
    key = re.search(r'href="/outbox/([^"/?]+)"', found)
    assert key and "Picks #5" in client.get(f"/outbox/{key.group(1)}").get_data(as_text=True)
    assert client.get("/outbox?page=99").status_code == 200  # past the end: the last page
