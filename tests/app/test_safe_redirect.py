"""Redirect targets taken from the request stay on this site: the usual bypass corpus, straight to
the helper and through /login?next= and a form's `next`."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from app.safe_redirect import local_target
from models import Role

PASSWORD = "correct horse battery staple"

BYPASSES = [
    "//evil.example/",
    "/\t/evil.example/",  # /%09/evil.example/: browsers drop the tab
    "/\n/evil.example/",
    "/\r/evil.example/",
    " //evil.example/",
    "/ /evil.example/",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example/",
    "http://evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "%2F%2Fevil.example",
    "/\u3000/evil.example",
    "/\uff0f/evil.example",  # a full-width solidus
    "/\x00/evil.example",
    "///evil.example",
    "////evil.example",
    "/\x7f/evil.example",
]


@pytest.mark.parametrize("target", BYPASSES)
def test_off_site_targets_fall_back(target: str) -> None:
    assert local_target(target, "/home") == "/home"


@pytest.mark.parametrize("target", ["/campaigns", "/campaigns/5?tab=report", "/contacts?q=a%40b", "/"])
def test_local_paths_are_kept(target: str) -> None:
    assert local_target(target, "/home") == target


def test_a_same_site_referer_keeps_its_path_and_another_site_falls_back() -> None:
    assert local_target("http://mail.example/catalog?page=2", "/", host="mail.example") == "/catalog?page=2"
    assert local_target("http://evil.example/catalog", "/", host="mail.example") == "/"
    assert local_target("http://mail.example//evil.example", "/", host="mail.example") == "/"


@pytest.mark.parametrize(
    "query", ["/%09/evil.example/", "//evil.example/", "/%5Cevil.example", "https:evil.example", "%20//evil"]
)
def test_login_never_redirects_off_site(app: Flask, client: FlaskClient, query: str) -> None:
    with app.test_request_context():
        create_user("ann@example.com", PASSWORD, Role.viewer)
        db().commit()
    response = client.post(f"/login?next={query}", data={"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/", location


def test_login_keeps_a_local_next(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context():
        create_user("ann@example.com", PASSWORD, Role.viewer)
        db().commit()
    response = client.post("/login?next=/campaigns", data={"email": "ann@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/campaigns"


def test_a_failed_action_does_not_follow_a_foreign_referer(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context():
        create_user("ann@example.com", PASSWORD, Role.admin)
        db().commit()
    client.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    response = client.post(
        "/settings/webhooks",
        data={"url": "ftp://x", "format": "json"},
        headers={"Referer": "https://evil.example/phish"},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_an_approval_form_next_stays_on_site(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context():
        create_user("ann@example.com", PASSWORD, Role.admin)
        db().commit()
    client.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    response = client.post("/approvals/1/approve", data={"next": "/\t/evil.example/", "reason": "ok"})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]
