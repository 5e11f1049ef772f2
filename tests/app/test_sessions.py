"""A logout or a password change ends the user's other browser sessions."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import Role

PASSWORD = "correct horse battery staple"


def _browser(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/campaigns").status_code == 200


def _add(app: Flask, email: str, role: Role) -> None:
    with app.test_request_context():
        create_user(email, PASSWORD, role)
        db().commit()


def test_logout_ends_the_users_other_sessions(app: Flask) -> None:
    _add(app, "ann@example.com", Role.marketer)
    _add(app, "bob@example.com", Role.marketer)
    laptop, phone = _browser(app, "ann@example.com"), _browser(app, "ann@example.com")
    other_user = _browser(app, "bob@example.com")
    assert _signed_in(laptop) and _signed_in(phone)
    laptop.post("/logout")
    assert not _signed_in(laptop)
    assert not _signed_in(phone)  # the same user's other session ended too
    assert _signed_in(other_user)
    again = _browser(app, "ann@example.com")  # signing in again works
    assert _signed_in(again)


def test_a_password_change_ends_other_sessions_but_keeps_the_changers(app: Flask, api: Any) -> None:
    _add(app, "ann@example.com", Role.admin)
    stolen, own = _browser(app, "ann@example.com"), _browser(app, "ann@example.com")
    users = own.get("/api/v1/users").json["users"]
    ann = next(u for u in users if u["email"] == "ann@example.com")
    response = own.post(
        f"/settings/users/{ann['id']}", data={"password": "a brand new passphrase"}, follow_redirects=False
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    assert _signed_in(own)
    assert not _signed_in(stolen)
    # an admin resetting it over the API ends every session of that user
    assert (
        api.patch(f"/api/v1/users/{ann['id']}", json={"password": "yet another passphrase"}).status_code
        == 200
    )
    assert not _signed_in(own)
