"""The web side tried as an attacker would: secrets shown to viewers, a stranger locking an account
out, ids past the bigint range on UI pages, loosely parsed numbers, a refund without a purchase, a
production base URL without a host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from app import create_app
from app.auth import create_user
from app.extensions import db
from campaigns.events.ingest import ingest
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import STREAM, RawEvent
from models import Role, Send, Webhook
from tests.app.test_tracking import sent_one
from tests.conftest import SmtpSink

PASSWORD = "correct horse battery staple"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


def _user(app: Flask, role: Role, email: str | None = None) -> str:
    email = email or f"{role.value}@example.com"
    with app.test_request_context():
        create_user(email, PASSWORD, role)
        db().commit()
    return email


def _login(client: FlaskClient, email: str, password: str = PASSWORD, addr: str = "127.0.0.1") -> Any:
    return client.post(
        "/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": addr}
    )


# --- secrets ------------------------------------------------------------------------------------


def test_a_viewer_does_not_see_webhook_urls(app: Flask, session: Session) -> None:
    session.add(Webhook(url=SLACK, secret="s" * 20, format="slack", name="Team"))
    session.commit()
    viewer, admin = app.test_client(), app.test_client()
    _login(viewer, _user(app, Role.viewer))
    _login(admin, _user(app, Role.admin))
    seen_by_viewer = viewer.get("/settings/webhooks").get_data(as_text=True)
    assert "XXXXXXXX" not in seen_by_viewer and "services/T000" not in seen_by_viewer
    assert "hooks.slack.com" in seen_by_viewer  # where alerts go, without the credential
    assert SLACK in admin.get("/settings/webhooks").get_data(as_text=True)


def test_the_audit_log_does_not_show_viewers_a_webhook_url(
    app: Flask, api: Any, make_api_client: Any
) -> None:
    assert api.post("/api/v1/webhooks", json={"url": SLACK, "format": "slack"}).status_code == 201
    viewer = make_api_client("viewer")
    entries = viewer.get("/api/v1/audit?object_type=webhook").get_data(as_text=True)
    assert "XXXXXXXX" not in entries
    client = app.test_client()
    _login(client, _user(app, Role.viewer, "v2@example.com"))
    assert "XXXXXXXX" not in client.get("/audit").get_data(as_text=True)


# --- login throttling ---------------------------------------------------------------------------


def test_a_strangers_wrong_guesses_never_lock_the_owner_out(app: Flask) -> None:
    owner_email = _user(app, Role.viewer)
    owner = app.test_client()
    assert _login(owner, owner_email).status_code == 302  # this browser signed in before
    owner.post("/logout")
    limit = int(app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    attacker = app.test_client()
    codes = [_login(attacker, owner_email, "guess", "203.0.113.9").status_code for _ in range(limit + 5)]
    assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}
    assert _login(attacker, owner_email, PASSWORD, "203.0.113.9").status_code == 429  # guessing stays slow
    # The owner's browser gets in with the right password, from the attacker's address too.
    assert _login(owner, owner_email).status_code == 302
    owner.post("/logout")
    assert _login(owner, owner_email, PASSWORD, "203.0.113.9").status_code == 302


def test_a_known_browser_has_its_own_limit(app: Flask) -> None:
    email = _user(app, Role.viewer)
    browser = app.test_client()
    assert _login(browser, email).status_code == 302
    browser.post("/logout")
    limit = int(app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    codes = [_login(browser, email, "wrong").status_code for _ in range(limit + 1)]
    assert codes[limit] == 429  # a stolen device cookie does not buy unlimited guesses


def test_a_forged_device_cookie_counts_as_a_new_browser(app: Flask) -> None:
    email = _user(app, Role.viewer)
    limit = int(app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    attacker = app.test_client()
    for _ in range(limit):
        _login(attacker, email, "guess", "198.51.100.1")
    attacker.set_cookie("mailramp_device", "forged.value.here")
    assert _login(attacker, email, "guess", "198.51.100.1").status_code == 429


# --- ids past the bigint range ------------------------------------------------------------------


def int_routes(app: Flask) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for rule in app.url_map.iter_rules():
        ints = [name for name, conv in rule._converters.items() if type(conv).__name__ == "IntegerConverter"]
        if not ints or rule.rule.startswith("/api/"):
            continue
        values: dict[str, Any] = {name: 2**64 if name in ints else "x" for name in rule.arguments}
        method = (
            "GET"
            if "GET" in (rule.methods or ())
            else sorted((rule.methods or set()) - {"OPTIONS", "HEAD"})[0]
        )
        out.append((rule.endpoint, method, values))
    return out


def test_every_ui_route_answers_404_for_ids_past_the_bigint_range(app: Flask, client: FlaskClient) -> None:
    _login(client, _user(app, Role.admin))
    routes = int_routes(app)
    assert len(routes) >= 12
    for endpoint, method, values in routes:
        with app.test_request_context():
            from flask import url_for

            path = url_for(endpoint, **values)
        response = client.open(path, method=method)  # TESTING: a view's exception would propagate
        assert response.status_code == 404, (endpoint, path, response.status_code)
    assert client.get(f"/contacts/{2**63 - 1}").status_code == 404  # the largest id is still an id
    assert client.get(f"/api/v1/contacts/{2**64}").status_code == 404


# --- strict values ------------------------------------------------------------------------------


def _conversion_token(app: Flask, send_id: int = 7) -> str:
    return TokenSigner(app.config["SECRET_KEY"]).sign(TrackingRef("conversion", send_id))


LOOSE_NUMBERS = ["1_000", " 5 ", "5 ", "+5", "1e3", "0x10", "\u0665", "5.", ".5", "1,5", "NaN", "", "5\n"]


@pytest.mark.parametrize("value", LOOSE_NUMBERS)
def test_conversion_values_are_plain_decimal_numbers(
    app: Flask, client: FlaskClient, redis: Redis, value: str
) -> None:
    response = client.post(f"/t/v/{_conversion_token(app)}", data={"value": value, "order": "A-1"})
    assert response.status_code == 400, value
    assert response.json["where"] == "value"
    assert redis.xlen(STREAM) == 0


def test_a_plain_value_is_accepted(app: Flask, client: FlaskClient, redis: Redis) -> None:
    for value in ("5", "19.99", "0"):
        assert client.post(f"/t/v/{_conversion_token(app)}", data={"value": value}).status_code == 204
    assert [RawEvent.from_fields(f).value for _, f in redis.xrange(STREAM)] == [5.0, 19.99, 0.0]


def test_a_refund_without_a_purchase_does_not_mark_the_contact_converted(
    app: Any, session: Session, smtp_sink: SmtpSink, api: Any
) -> None:
    rt, _ = sent_one(app, session, smtp_sink)
    campaign_id = session.scalar(sa.select(Send.campaign_id))
    body = {"campaign_id": campaign_id, "email": "person0@example.com", "value": -20.0, "order_id": "R-1"}
    assert api.post("/api/v1/conversions", json=body).status_code == 202
    ingest(rt)
    send = session.scalars(sa.select(Send)).one()
    session.refresh(send)
    assert send.converted_at is None
    purchase = {**body, "value": 50.0, "order_id": "P-1"}
    assert api.post("/api/v1/conversions", json=purchase).status_code == 202
    ingest(rt)
    session.refresh(send)
    assert send.converted_at is not None and send.revenue == 30.0


# --- the production base URL --------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["https://", "https:/mail.example.com", "https:///mail.example.com", "https://:443", "mail.example.com",
     "https://mail.example.com:99999", "https://user:pw@mail.example.com", "https://mail.example.com?x=1"],
)  # fmt: skip
def test_production_refuses_a_base_url_without_a_usable_host(app: Flask, tmp_path: Path, base: str) -> None:
    with pytest.raises(RuntimeError, match="BASE_URL"):
        create_app(
            {"TESTING": True, "SECRET_KEY": "k" * 32, "DATABASE_URL": app.config["DATABASE_URL"],
             "REDIS_URL": app.config["REDIS_URL"], "BASE_URL": base, "ENV": "production"},
            instance_path=str(tmp_path),
        )  # fmt: skip


def test_production_takes_an_https_base_url_with_a_host(app: Flask, tmp_path: Path) -> None:
    started = create_app(
        {"TESTING": True, "SECRET_KEY": "k" * 32, "DATABASE_URL": app.config["DATABASE_URL"],
         "REDIS_URL": app.config["REDIS_URL"], "BASE_URL": "https://mail.example.com/mr", "ENV": "production"},
        instance_path=str(tmp_path),
    )  # fmt: skip
    assert re.match(r"https://mail\.example\.com", started.config["BASE_URL"])
