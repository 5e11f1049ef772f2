"""The UI shell: login, expiring sessions, CSRF on every form, role checks, users and API tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import ApiToken, Role, User

PASSWORD = "correct horse battery staple"


@pytest.fixture()
def users(app: Flask) -> dict[str, str]:
    with app.test_request_context():
        for role in Role:
            create_user(f"{role.value}@example.com", PASSWORD, role)
        db().commit()
    return {role.value: f"{role.value}@example.com" for role in Role}


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"email": email, "password": password})


@pytest.fixture()
def csrf_app(app: Flask) -> Iterator[Flask]:
    app.config["WTF_CSRF_ENABLED"] = True
    yield app
    app.config["WTF_CSRF_ENABLED"] = False


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match.group(1)


def test_pages_need_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_and_dashboard(client: FlaskClient, users: dict[str, str]) -> None:
    assert login(client, users["marketer"]).status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert b"Dashboard" in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_wrong_password_is_refused(client: FlaskClient, users: dict[str, str]) -> None:
    assert login(client, users["marketer"], "wrong").status_code == 401


def test_login_is_rate_limited(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    limit = app.config["LOGIN_ATTEMPTS_PER_MINUTE"]
    codes = [login(client, users["viewer"], "wrong").status_code for _ in range(limit + 1)]
    assert codes[:limit] == [401] * limit
    assert codes[limit] == 429
    assert login(client, users["viewer"]).status_code == 429  # even the right password waits


def test_session_expires(app: Flask, client: FlaskClient, users: dict[str, str], monkeypatch: Any) -> None:
    import itsdangerous.timed

    login(client, users["viewer"])
    assert client.get("/").status_code == 200
    lifetime = app.permanent_session_lifetime.total_seconds()
    real = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + lifetime + 5)
    assert client.get("/").status_code == 302


def test_forms_need_csrf(csrf_app: Flask, users: dict[str, str]) -> None:
    client = csrf_app.test_client()
    form = client.get("/login").get_data(as_text=True)
    assert client.post("/login", data={"email": users["admin"], "password": PASSWORD}).status_code == 400
    token = csrf_of(form)
    done = client.post("/login", data={"email": users["admin"], "password": PASSWORD, "csrf_token": token})
    assert done.status_code == 302
    page = client.get("/settings/users").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    new = {"email": "new@example.com", "password": "x" * 12, "role": "viewer"}
    refused = client.post("/settings/users", data=new)
    assert refused.status_code == 400 and b"Form expired" in refused.data
    assert client.post("/settings/users", data={**new, "csrf_token": csrf_of(page)}).status_code == 302


def test_viewer_changes_nothing(client: FlaskClient, users: dict[str, str]) -> None:
    login(client, users["viewer"])
    page = client.get("/").get_data(as_text=True)
    assert "<form" in page  # the logout form only
    assert page.count("<form") == 1
    assert client.post("/settings/tokens", data={"name": "x"}).status_code == 403
    assert client.get("/settings/users").status_code == 403
    assert client.post("/logout").status_code == 302


def test_admin_creates_users_with_roles(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    login(client, users["admin"])
    response = client.post(
        "/settings/users",
        data={"email": "Ann@Example.com", "name": "Ann", "role": "approver", "password": "long enough pw"},
        follow_redirects=True,
    )
    assert b"Created ann@example.com (approver)" in response.data
    short = client.post(
        "/settings/users",
        data={"email": "bob@example.com", "role": "viewer", "password": "short"},
        follow_redirects=True,
    )
    assert b"password: use at least 10 characters" in short.data
    with app.app_context():
        assert db().query(User).filter_by(email="ann@example.com").one().role == "approver"
        assert db().query(User).filter_by(email="bob@example.com").count() == 0


def test_admin_cannot_lock_themselves_out(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    login(client, users["admin"])
    with app.app_context():
        me = db().query(User).filter_by(email=users["admin"]).one().id
    client.post(f"/settings/users/{me}", data={"role": "viewer"})
    with app.app_context():
        assert db().get(User, me).role == "admin"  # type: ignore[union-attr]


def test_marketer_is_not_admin(client: FlaskClient, users: dict[str, str]) -> None:
    login(client, users["marketer"])
    assert client.get("/settings/users").status_code == 403
    assert client.post("/settings/users", data={"email": "x@example.com"}).status_code == 403


def test_api_token_shown_once_and_works(app: Flask, client: FlaskClient, users: dict[str, str]) -> None:
    login(client, users["marketer"])
    page = client.post("/settings/tokens", data={"name": "export script"}).get_data(as_text=True)
    token = re.search(r'value="(mr_[^"]+)"', page)
    assert token
    assert token.group(1) not in client.get("/settings/tokens").get_data(as_text=True)
    assert client.get("/", headers={"Authorization": f"Bearer {token.group(1)}"}).status_code == 200
    with app.app_context():
        row = db().query(ApiToken).one()
    client.post(f"/settings/tokens/{row.id}/revoke")
    assert client.get("/api/v1/openapi.json").status_code == 200
    with app.app_context():
        assert db().get(ApiToken, row.id).revoked  # type: ignore[union-attr]
