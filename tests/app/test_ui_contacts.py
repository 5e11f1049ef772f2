"""Contacts pages: import with the per-row error report, search, detail with arm history,
suppression; and the outbox of the embedded SMTP server."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import Campaign, Contact, ImportRun, Role, Send, Suppression, Template

PASSWORD = "correct horse battery staple"
CSV = (
    "email,name,country,plan\n"
    "ann@example.com,Ann,France,gold\n"
    "not-an-email,Bad,Spain,silver\n"
    "bob@example.com,Bob,Spain,silver\n"
    "ANN@example.com,Ann again,France,gold\n"
)


@pytest.fixture()
def marketer(app: Flask, client: FlaskClient) -> FlaskClient:
    with app.test_request_context():
        create_user("m@example.com", PASSWORD, Role.marketer)
        db().commit()
    client.post("/login", data={"email": "m@example.com", "password": PASSWORD})
    return client


def upload(client: FlaskClient, text: str, name: str = "people.csv") -> str:
    response = client.post(
        "/imports/contacts",
        data={"file": (io.BytesIO(text.encode()), name), "encoding": "utf-8"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_import_reports_bad_rows_and_keeps_good_ones(app: Flask, marketer: FlaskClient) -> None:
    page = marketer.get(upload(marketer, CSV)).get_data(as_text=True)
    assert "Rows with errors" in page
    assert re.search(r"<td class=\"num\">3</td><td>email</td>", page)  # line 3 of the file
    assert re.search(r"<td class=\"num\">5</td><td>email</td>", page)  # a duplicate of line 2
    with app.app_context():
        assert sorted(db().scalars(sa.select(Contact.email))) == ["ann@example.com", "bob@example.com"]
        run = db().query(ImportRun).one()
        assert (run.status, run.rows_imported, run.rows_failed) == ("done", 2, 2)
    progress = marketer.get(f"/imports/{run.id}/progress").get_json()
    assert progress["finished"] is True and progress["done"] == 4


def test_missing_email_column_fails_the_run(app: Flask, marketer: FlaskClient) -> None:
    page = marketer.get(upload(marketer, "name,country\nAnn,France\n")).get_data(as_text=True)
    assert "missing required column email" in page


def test_search_and_detail_with_arm_history(app: Flask, marketer: FlaskClient) -> None:
    with app.app_context():
        ann = Contact(email="ann@example.com", name="Ann", attributes={"plan": "gold"})
        bob = Contact(email="bob@example.com", name="Bob")
        template = Template(name="t", subject="Hi", control_html="x")
        db().add_all([ann, bob, template])
        db().flush()
        campaign = Campaign(name="Spring sale", template_id=template.id, from_email="shop@example.com")
        db().add(campaign)
        db().flush()
        db().add(
            Send(
                campaign_id=campaign.id,
                contact_id=ann.id,
                rollout_id=7,
                stage_index=2,
                arm="treatment",
                content="ai",
                bucket=1234,
                state="sent",
            )
        )
        db().commit()
        ann_id = ann.id
    listing = marketer.get("/contacts?q=ann").get_data(as_text=True)
    assert "ann@example.com" in listing and "bob@example.com" not in listing
    detail = marketer.get(f"/contacts/{ann_id}").get_data(as_text=True)
    assert "Spring sale" in detail and "treatment" in detail and "gold" in detail
    marketer.post(f"/contacts/{ann_id}/suppression", data={"suppress": "1"})
    with app.app_context():
        assert db().query(Suppression).filter_by(email="ann@example.com").count() == 1
    assert "suppressed" in marketer.get(f"/contacts/{ann_id}").get_data(as_text=True)


def test_outbox_lists_and_shows_messages_sandboxed(app: Flask, marketer: FlaskClient) -> None:
    import mailbox

    path = Path(app.instance_path) / "outbox"
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(path), create=True)
    box.add(
        b"From: shop@example.com\r\nTo: ann@example.com\r\nSubject: Hello Ann\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hi <img src="http://x/t/o"></p>\r\n'
    )
    listing = marketer.get("/outbox").get_data(as_text=True)
    assert "Hello Ann" in listing
    key = re.search(r'href="/outbox/([^"/]+)"', listing)
    assert key
    assert "sandbox" in marketer.get(f"/outbox/{key.group(1)}").get_data(as_text=True)
    body = marketer.get(f"/outbox/{key.group(1)}/body.html")
    assert "<p>Hi" in body.get_data(as_text=True)
    assert "img-src data:" in body.headers["Content-Security-Policy"]
