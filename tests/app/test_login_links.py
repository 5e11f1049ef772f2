"""While strangers' wrong guesses hold an account, the owner's new browser gets in through a mailed,
single-use, browser-bound, expiring link, and a guesser learns nothing from a held try."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker

from app.auth import create_user, hash_password
from app.extensions import db
from campaigns.ops import queues, sign_in_links
from models import Role, User
from tests.app.test_hostile_web import PASSWORD, _login, _user
from tests.conftest import SmtpSink

OWNER_ADDR = "192.0.2.77"


def _hold(app: Flask, email: str) -> None:
    """A stranger fills the account's counter, one wrong guess from each of many addresses."""
    for i in range(int(app.config["LOGIN_ATTEMPTS_PER_MINUTE"])):
        assert _login(app.test_client(), email, "guess", f"198.51.100.{i + 1}").status_code == 401


def _drain(app: Flask) -> None:
    rt = app.extensions["mailramp"]
    SimpleWorker(queues.all_queues(rt), connection=rt.redis).work(burst=True, with_scheduler=False)


def _link(sink: SmtpSink) -> str:
    assert len(sink.messages) == 1, [m["Subject"] for m in sink.messages]
    body = sink.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://mailramp\.test(/login/link/\S+)", body)
    assert match, body
    return match.group(1)


def _without_csrf(page: str) -> str:
    """A page with its per-session anti-forgery tokens blanked out."""
    return re.sub(r'(csrf-token" content|name="csrf_token" value)="[^"]*"', r'\1=""', page)


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


@pytest.fixture()
def held(app: Flask) -> str:
    email = _user(app, Role.viewer, "owner@example.com")
    _hold(app, email)
    return email


def test_the_owners_new_browser_gets_in_through_the_mailed_link(
    app: Flask, held: str, smtp_sink: SmtpSink
) -> None:
    browser = app.test_client()
    answer = _login(browser, held, PASSWORD, OWNER_ADDR)
    assert answer.status_code == 429 and "we have emailed a" in answer.get_data(as_text=True)
    assert not _signed_in(browser)
    _drain(app)
    assert smtp_sink.messages[0]["To"] == held
    link = _link(smtp_sink)
    page = browser.get(link)  # a mail scanner's GET spends nothing
    assert page.status_code == 200 and held in page.get_data(as_text=True)
    assert browser.post(link).status_code == 302
    assert _signed_in(browser)
    # From now on this browser is known: the right password gets straight in though the hold goes on.
    browser.post("/logout")
    assert _login(browser, held, PASSWORD, OWNER_ADDR).status_code == 302
    assert app.test_client().post("/login", data={"email": held, "password": PASSWORD}).status_code == 429


def test_a_wrong_password_gets_the_same_answer_and_no_mail(
    app: Flask, held: str, smtp_sink: SmtpSink
) -> None:
    def answer(password: str, addr: str) -> tuple[int, str, list[str]]:
        response = _login(app.test_client(), held, password, addr)
        cookies = sorted(c.split("=")[0] for c in response.headers.getlist("Set-Cookie"))
        return response.status_code, _without_csrf(response.get_data(as_text=True)), cookies

    wrong, right = answer("guess", "192.0.2.1"), answer(PASSWORD, "192.0.2.2")
    assert wrong == right
    rt = app.extensions["mailramp"]
    assert queues.queue(rt, queues.DEFAULT).count == 2  # the same work either way
    _drain(app)
    assert len(smtp_sink.messages) == 1  # only the right password's link
    assert answer("guess", "192.0.2.3") == answer("nobody-has-this", "192.0.2.4")


def test_an_unknown_email_while_held_gets_the_same_answer(app: Flask, held: str) -> None:
    _hold(app, "nobody@example.com")
    a = _login(app.test_client(), "nobody@example.com", PASSWORD, "192.0.2.5")
    b = _login(app.test_client(), held, "guess", "192.0.2.6")
    page_a = _without_csrf(a.get_data(as_text=True)).replace("nobody@example.com", "")
    page_b = _without_csrf(b.get_data(as_text=True)).replace(held, "")
    assert (a.status_code, page_a) == (b.status_code, page_b)


def test_the_link_is_single_use(app: Flask, held: str, smtp_sink: SmtpSink) -> None:
    browser = app.test_client()
    _login(browser, held, PASSWORD, OWNER_ADDR)
    _drain(app)
    link = _link(smtp_sink)
    bound = browser.get_cookie("mailramp_sign_in")
    assert bound is not None
    assert browser.post(link).status_code == 302
    browser.post("/logout")
    browser.set_cookie("mailramp_sign_in", bound.value)  # even in the browser it was bound to
    again = browser.post(link)
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)
    assert not _signed_in(browser)


def test_the_link_expires(
    app: Flask, held: str, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = app.test_client()
    _login(browser, held, PASSWORD, OWNER_ADDR)
    _drain(app)
    link = _link(smtp_sink)
    later = time.time() + int(app.config["LOGIN_LINK_MINUTES"]) * 60 + 5
    monkeypatch.setattr(sign_in_links, "clock", lambda: later)
    answer = browser.post(link)
    assert answer.status_code == 400 and "expired" in answer.get_data(as_text=True)
    assert not _signed_in(browser)


def test_the_link_works_only_in_the_browser_that_asked(app: Flask, held: str, smtp_sink: SmtpSink) -> None:
    _login(app.test_client(), held, PASSWORD, OWNER_ADDR)
    _drain(app)
    elsewhere = app.test_client()
    answer = elsewhere.post(_link(smtp_sink))
    assert answer.status_code == 400 and "browser where you logged in" in answer.get_data(as_text=True)
    assert not _signed_in(elsewhere)


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_a_password_change_or_deactivation_kills_the_link(
    app: Flask, held: str, smtp_sink: SmtpSink, change: str
) -> None:
    browser = app.test_client()
    _login(browser, held, PASSWORD, OWNER_ADDR)
    _drain(app)
    with app.test_request_context():
        user = db().query(User).filter_by(email=held).one()
        if change == "password":
            user.password_hash = hash_password("a brand new passphrase")
        else:
            user.active = False
        db().commit()
    assert browser.post(_link(smtp_sink)).status_code == 400
    assert not _signed_in(browser)


def test_a_forged_or_altered_link_is_refused(app: Flask, held: str, smtp_sink: SmtpSink) -> None:
    browser = app.test_client()
    _login(browser, held, PASSWORD, OWNER_ADDR)
    _drain(app)
    link = _link(smtp_sink)
    with app.test_request_context():
        admin = create_user("admin@example.com", PASSWORD, Role.admin)
        db().commit()
        forged = sign_in_links.SignInLink(admin.id, "n" * 22, "b" * 64, "p" * 32, "/", int(time.time()))
    for bad in (link[:-3] + "abc", "/login/link/" + sign_in_links.link_token("another-key", forged)):
        answer = browser.post(bad)
        assert answer.status_code == 400 and "not valid" in answer.get_data(as_text=True)
    assert not _signed_in(browser)


def test_links_mailed_to_one_user_are_capped_per_hour(app: Flask, held: str, smtp_sink: SmtpSink) -> None:
    cap = int(app.config["LOGIN_LINKS_PER_HOUR"])
    for i in range(cap + 2):
        assert _login(app.test_client(), held, PASSWORD, f"192.0.2.{100 + i}").status_code == 429
    _drain(app)
    assert len(smtp_sink.messages) == cap


def test_a_client_address_past_its_limit_is_not_checked_at_all(app: Flask, held: str, smtp_sink: Any) -> None:
    """One address cannot make the server hash passwords without limit: past its own counter it gets
    429 with nothing checked, enqueued or mailed."""
    limit = int(app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    for _ in range(limit):
        _login(app.test_client(), held, "guess", "203.0.113.50")
    answer = _login(app.test_client(), held, PASSWORD, "203.0.113.50")
    assert answer.status_code == 429 and "emailed" not in answer.get_data(as_text=True)
    _drain(app)
    assert smtp_sink.messages == []
