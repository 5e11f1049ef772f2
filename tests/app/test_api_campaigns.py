"""Templates and campaigns through the API: validation that says what and where, and roles."""

from __future__ import annotations

from typing import Any

import pytest

LAYOUT = "<html><body>{{ content }}</body></html>"


def template_body(**overrides: str) -> dict[str, str]:
    return {
        "name": "T",
        "subject": "Hello",
        "layout_html": LAYOUT,
        "control_html": "<p>hi</p>",
        "ai_html": "{% for r in recommendations %}{{ r.name }}{% endfor %}",
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "where", "message"),
    [
        (
            {"ai_html": "<p>\n{% for r in recommendations %}\n{{ r.name }\n{% endfor %}"},
            "ai_html, line 3",
            "syntax",
        ),
        ({"control_html": "{% if %}"}, "control_html, line 1", "syntax"),
        ({"layout_html": "<html>no slot</html>"}, "layout_html", "{{ content }}"),
        ({"subject": ""}, "subject", "required"),
        ({"subject": "{{ contact.name"}, "subject, line 1", "syntax"),
        ({"ai_html": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, "ai_html", "not allowed"),
        ({"control_html": "{{ contact.__init__.__globals__ }}"}, "control_html", "not allowed"),
    ],
)
def test_bad_templates_are_refused_with_field_and_line(
    api: Any, overrides: dict[str, str], where: str, message: str
) -> None:
    response = api.post("/api/v1/templates", json=template_body(**overrides))
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["where"] == where
    assert message in body["error"]
    assert api.get("/api/v1/templates").get_json()["templates"] == []  # nothing stored


def test_template_autoescapes_contact_data(api: Any) -> None:
    template = api.post(
        "/api/v1/templates", json=template_body(control_html="<p>{{ contact.name }}</p>")
    ).get_json()
    preview = api.get(f"/api/v1/templates/{template['id']}/preview?arm=control").get_json()
    assert "Sample Contact" in preview["html"]
    assert api.get(f"/api/v1/templates/{template['id']}/preview?arm=blue").status_code == 400


def test_template_preview_in_both_arms(api: Any) -> None:
    template = api.post("/api/v1/templates", json=template_body()).get_json()
    ai = api.get(f"/api/v1/templates/{template['id']}/preview?arm=treatment").get_json()
    control = api.get(f"/api/v1/templates/{template['id']}/preview?arm=control").get_json()
    assert "Sample item 1" in ai["html"] and "<p>hi</p>" in control["html"]


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"template_id": 999}, "template_id"),
        ({"segment_id": 999}, "segment_id"),
        ({"from_email": "not-an-address"}, "from_email"),
        ({"name": " "}, "name"),
        ({"schedule": {"kind": "at", "send_at": "tomorrow"}}, "schedule.send_at"),
        ({"schedule": {"kind": "recurring", "cron": "every day"}}, "schedule.cron"),
        (
            {"schedule": {"kind": "at", "send_at": "2030-01-01T09:00", "timezone": "Mars/Olympus"}},
            "schedule.timezone",
        ),
        ({"schedule": {"kind": "sometimes"}}, "schedule.kind"),
        ({"ai": {"exposure_percent": 120}}, "ai.exposure_percent"),
        ({"ai": {"exposure_percent": 60, "holdout_percent": 50}}, "ai"),
        ({"wave_size": 0}, "wave_size"),
    ],
)
def test_bad_campaigns_are_refused(api: Any, overrides: dict[str, Any], where: str) -> None:
    template = api.post("/api/v1/templates", json=template_body()).get_json()
    body = {"name": "C", "template_id": template["id"], "from_email": "shop@example.com", **overrides}
    response = api.post("/api/v1/campaigns", json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["where"] == where
    assert api.get("/api/v1/campaigns").get_json()["campaigns"] == []


def test_scheduled_wall_clock_time_is_read_in_the_campaign_timezone(api: Any) -> None:
    template = api.post("/api/v1/templates", json=template_body()).get_json()
    body = {
        "name": "C",
        "template_id": template["id"],
        "from_email": "shop@example.com",
        "schedule": {"kind": "at", "send_at": "2030-07-01T09:00", "timezone": "Europe/Paris"},
    }
    campaign = api.post("/api/v1/campaigns", json=body).get_json()
    assert campaign["status"] == "scheduled"
    assert campaign["send_at"].startswith("2030-07-01T07:00:00")  # 09:00 in Paris is 07:00 UTC in summer


def test_not_json_and_bad_wave_limit(api: Any) -> None:
    response = api.post("/api/v1/campaigns", data="name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.get_json()["where"] == "body"
    template = api.post("/api/v1/templates", json=template_body()).get_json()
    campaign = api.post(
        "/api/v1/campaigns",
        json={"name": "C", "template_id": template["id"], "from_email": "shop@example.com"},
    ).get_json()
    bad = api.post(f"/api/v1/campaigns/{campaign['id']}/waves", json={"limit": "ten"})
    assert bad.status_code == 400 and bad.get_json()["where"] == "limit"
    assert api.post("/api/v1/campaigns/4242/waves", json={}).status_code == 404


def test_roles_and_tokens(client: Any, make_api_client: Any) -> None:
    viewer = make_api_client("viewer")
    marketer = make_api_client("marketer")
    assert client.get("/api/v1/templates").status_code == 401
    assert client.get("/api/v1/templates", headers={"Authorization": "Bearer mr_forged"}).status_code == 401
    assert viewer.get("/api/v1/templates").status_code == 200
    assert viewer.post("/api/v1/templates", json=template_body()).status_code == 403
    assert marketer.post("/api/v1/templates", json=template_body()).status_code == 201


def test_the_api_ignores_the_browser_session(app: Any, client: Any) -> None:
    """The API is CSRF-exempt, so a logged-in browser's cookie must not authorize changes through it."""
    from app.auth import create_user
    from app.extensions import db
    from models import Role

    with app.test_request_context():
        create_user("m@example.com", "correct horse battery staple", Role.marketer)
        db().commit()
    login = client.post("/login", data={"email": "m@example.com", "password": "correct horse battery staple"})
    assert login.status_code == 302
    assert client.get("/").status_code == 200  # the session works for pages
    assert client.post("/api/v1/templates", json=template_body()).status_code == 401
    assert client.post("/api/v1/campaigns/1/cancel").status_code == 401
    assert client.get("/api/v1/campaigns").status_code == 200  # reading (CSV exports) is safe
