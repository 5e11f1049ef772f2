"""Settings -> Sending rules, over the API and the UI: everyone reads, admins write, bad input is a 400
naming the field (the same schema for both), and what is saved is what the send path reads."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from campaigns.sending.cap_claims import load_rules
from models import Role

PASSWORD = "correct horse battery staple"
GOOD = {
    "max_per_24h": 2,
    "max_per_7d": 5,
    "quiet_start": "21:00",
    "quiet_end": "08:00",
    "default_timezone": "Europe/Paris",
}
OFF = {
    "max_per_24h": None,
    "max_per_7d": None,
    "quiet_start": None,
    "quiet_end": None,
    "default_timezone": "UTC",
}


def test_defaults_are_off_and_admins_set_them(app: Flask, api: Any, make_api_client: Any) -> None:
    assert api.get("/api/v1/settings/sending-rules").json == OFF
    answer = api.put("/api/v1/settings/sending-rules", json=GOOD)
    assert answer.status_code == 200 and answer.json == GOOD
    viewer = make_api_client("viewer")
    assert viewer.get("/api/v1/settings/sending-rules").json == GOOD
    with app.app_context():
        rules = load_rules(db())
    assert (rules.max_per_24h, rules.max_per_7d, str(rules.quiet_end)) == (2, 5, "08:00:00")
    # turning a rule off: null, or leaving it out
    assert api.put("/api/v1/settings/sending-rules", json={"max_per_24h": 3}).json == {
        **OFF,
        "max_per_24h": 3,
    }


@pytest.mark.parametrize("role", ["viewer", "marketer", "approver"])
def test_only_admins_change_them(make_api_client: Any, role: str) -> None:
    client = make_api_client(role)
    assert client.put("/api/v1/settings/sending-rules", json=GOOD).status_code == 403
    assert client.get("/api/v1/settings/sending-rules").status_code == 200


def test_no_token_no_rules(client: FlaskClient) -> None:
    assert client.get("/api/v1/settings/sending-rules").status_code == 401
    assert client.put("/api/v1/settings/sending-rules", json=GOOD).status_code == 401


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"max_per_24h": 0}, "max_per_24h", "greater than or equal to 1"),
        ({"max_per_24h": "2"}, "max_per_24h", "valid integer"),
        ({"max_per_24h": True}, "max_per_24h", "valid integer"),
        ({"max_per_7d": 10_000}, "max_per_7d", "less than or equal to 500"),
        ({"quiet_start": "25:00", "quiet_end": "08:00"}, "quiet_start", "pattern"),
        ({"quiet_start": "21:00"}, "body", "quiet_end is missing"),
        ({"quiet_start": "08:00", "quiet_end": "08:00"}, "body", "must differ"),
        ({"max_per_24h": 5, "max_per_7d": 2}, "body", "at least max_per_24h"),
        ({"default_timezone": "Mars/Olympus_Mons"}, "default_timezone", "unknown time zone"),
        ({"default_timezone": "Europe"}, "default_timezone", "unknown time zone"),  # a directory
        ({"default_timezone": "../../etc/passwd"}, "default_timezone", "unknown time zone"),
        ({"default_timezone": "Europe/Paris\x00"}, "default_timezone", "NUL"),
        ({"throttled": 1}, "throttled", "unknown field"),
    ],
)
def test_bad_rules_are_a_400_at_their_field(api: Any, body: dict[str, Any], where: str, says: str) -> None:
    answer = api.put("/api/v1/settings/sending-rules", json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["where"] == where and says in answer.json["error"]
    assert api.get("/api/v1/settings/sending-rules").json == OFF  # nothing half-saved


def test_a_body_that_is_not_an_object(api: Any) -> None:
    answer = api.put("/api/v1/settings/sending-rules", data="[1]", content_type="application/json")
    assert answer.status_code == 400


def _login(app: Flask, role: Role) -> FlaskClient:
    with app.app_context():
        create_user(f"{role.value}@example.com", PASSWORD, role)
        db().commit()
    client = app.test_client()
    assert (
        client.post("/login", data={"email": f"{role.value}@example.com", "password": PASSWORD}).status_code
        == 302
    )
    return client


def test_the_settings_page(app: Flask) -> None:
    admin = _login(app, Role.admin)
    page = admin.get("/settings/sending-rules")
    assert page.status_code == 200 and "Sending rules" in page.get_data(as_text=True)
    form = {
        "max_per_24h": "2",
        "max_per_7d": "",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "default_timezone": "Asia/Tokyo",
    }
    saved = admin.post("/settings/sending-rules", data=form)
    assert saved.status_code == 302
    with app.app_context():
        rules = load_rules(db())
    assert (rules.max_per_24h, rules.max_per_7d, rules.default_timezone) == (2, None, "Asia/Tokyo")

    bad = admin.post(
        "/settings/sending-rules", data={**form, "max_per_24h": "two", "default_timezone": "Nowhere"}
    )
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "2 problems to fix" in text
    assert 'id="f-max_per_24h-error"' in text and 'id="f-default_timezone-error"' in text
    both = admin.post("/settings/sending-rules", data={**form, "quiet_end": ""})
    assert both.status_code == 400 and "quiet_end is missing" in both.get_data(as_text=True)

    for role in (Role.viewer, Role.marketer):
        other = _login(app, role)
        assert other.get("/settings/sending-rules").status_code == 200
        assert other.post("/settings/sending-rules", data=form).status_code == 403
    with app.app_context():
        assert load_rules(db()).max_per_24h == 2  # unchanged
