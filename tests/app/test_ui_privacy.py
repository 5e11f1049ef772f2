"""The contact page's consent history, data export and erasure, and the audit log page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import Contact, Role
from tests.conftest import ApiClient

PASSWORD = "correct horse battery staple"


def login(app: Flask, role: str) -> FlaskClient:
    with app.test_request_context():
        create_user(f"{role}-ui@example.com", PASSWORD, Role(role))
        db().commit()
    client = app.test_client()
    response = client.post("/login", data={"email": f"{role}-ui@example.com", "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_consent_export_and_erasure_from_the_contact_page(app: Flask, api: ApiClient) -> None:
    made = api.post("/api/v1/contacts", json={"email": "eve@example.com", "consent": True})
    contact_id = made.json["id"]
    api.patch(f"/api/v1/contacts/{contact_id}", json={"consent": False})
    admin = login(app, "admin")
    page = admin.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert 'id="consent-table"' in page and page.count("admin@example.com (token mr_") == 2
    assert "granted" in page and "withdrawn" in page and 'id="export-data"' in page
    admin.post(f"/contacts/{contact_id}/suppression", data={"suppress": "1"})
    assert "suppression list: manual" in admin.get(f"/contacts/{contact_id}").get_data(as_text=True)
    exported = admin.get(f"/api/v1/contacts/{contact_id}/export")  # the session cookie reads
    assert exported.status_code == 200 and exported.json["profile"]["email"] == "eve@example.com"
    assert [h["method"] for h in exported.json["consent_history"]] == ["api", "api", "suppression"]
    assert exported.json["suppressed"] == "manual"

    viewer = login(app, "viewer")
    assert 'id="erase-button"' not in viewer.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert viewer.post(f"/contacts/{contact_id}/erase", data={"reason": "x"}).status_code == 403

    no_reason = admin.post(f"/contacts/{contact_id}/erase", data={"reason": ""}, follow_redirects=True)
    assert "an erasure needs a reason" in no_reason.get_data(as_text=True)
    done = admin.post(
        f"/contacts/{contact_id}/erase", data={"reason": "GDPR request 31"}, follow_redirects=True
    )
    assert f"Contact {contact_id} is erased" in done.get_data(as_text=True)
    with app.app_context():
        assert db().scalar(sa.select(sa.func.count()).select_from(Contact)) == 0

    log = admin.get("/audit?action=erase").get_data(as_text=True)
    assert "admin-ui@example.com" in log and "GDPR request 31" in log and "eve@example.com" not in log
    everything = admin.get("/audit").get_data(as_text=True)
    assert "export" in everything and "eve@example.com" not in everything
    bad = admin.get("/audit?since=soon").get_data(as_text=True)
    assert "since: since must be an ISO date" in bad
    exported_log = admin.get("/api/v1/audit.csv?object_type=contact")
    assert exported_log.status_code == 200 and b"erase" in exported_log.data


def test_signup_forms_page(app: Flask) -> None:
    marketer = login(app, "marketer")
    made = marketer.post(
        "/signup-forms",
        data={"slug": "news", "name": "News", "wording": "Send me the news", "double_opt_in": "yes"},
        follow_redirects=True,
    )
    page = made.get_data(as_text=True)
    assert "Signup form news is live at /s/news." in page and "Send me the news" in page
    assert '&lt;iframe src="http://mailramp.test/s/news"' in page
    bad = marketer.post(
        "/signup-forms", data={"slug": "No Good", "name": "x", "wording": "y"}, follow_redirects=True
    )
    assert "slug must be" in bad.get_data(as_text=True)
    viewer = login(app, "viewer")
    assert "New signup form" not in viewer.get("/signup-forms").get_data(as_text=True)
    assert app.test_client().get("/s/news").status_code == 200
