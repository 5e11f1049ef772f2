"""The web side of sign-in links (`campaigns.ops.sign_in_links`): the answer to a login try while the
account is held (`app.login_throttle`), and redeeming the link the owner was mailed.

The held answer is the same page, status and cookies, after the same work, for a right and a wrong
password: the password is checked, the try counted, and one job enqueued either way (naming the user
only when the password was right). The asking browser gets a cookie nonce the link is bound to, so a
link forwarded or read from a mail log does not sign anyone in elsewhere.
"""

from __future__ import annotations

import hmac
import re
import secrets

from flask import current_app, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from app.extensions import db, get_runtime
from app.signup import confirm_sender
from campaigns.errors import InputError
from campaigns.ops import queues
from campaigns.ops.sign_in_links import (
    USED_KEY,
    browser_digest,
    mail_sign_in_link,
    password_fingerprint,
    read_link,
)
from models import User

BROWSER_COOKIE = "mailramp_sign_in"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")


def _minutes() -> int:
    return int(current_app.config["LOGIN_LINK_MINUTES"])


def held_answer(user: User | None, next_path: str) -> Response:
    """429 with "if the password was right, we emailed a link", whatever `user` is."""
    cookie = request.cookies.get(BROWSER_COOKIE, "")
    if not _NONCE.fullmatch(cookie):
        cookie = secrets.token_urlsafe(16)
    rt = get_runtime()
    queues.queue(rt, queues.DEFAULT).enqueue(
        mail_sign_in_link,
        user.id if user is not None else None,
        secrets.token_urlsafe(16),
        browser_digest(cookie),
        next_path,
        rt.settings.base_url + url_for("ui.login") + "/link/",
        confirm_sender(),
        _minutes(),
        int(current_app.config["LOGIN_LINKS_PER_HOUR"]),
        result_ttl=0,
        failure_ttl=3600,
    )
    page = render_template("ui/login.html", emailed=True, minutes=_minutes())
    response = make_response(page, 429)
    response.set_cookie(
        BROWSER_COOKIE,
        cookie,
        max_age=_minutes() * 60,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def redeem(token: str, spend: bool) -> tuple[User, str]:
    """The link's user and page after it, or InputError(where="link") saying why not. `spend` marks the
    link used (the POST); the GET only shows its button, so a mail scanner fetching it spends nothing."""
    settings = get_runtime().settings
    max_age = _minutes() * 60
    link = read_link(settings.secret_key, token, max_age)
    cookie = request.cookies.get(BROWSER_COOKIE, "")
    if not hmac.compare_digest(browser_digest(cookie), link.browser):
        raise InputError("open this link in the browser where you logged in", where="link")
    user = db().get(User, link.user_id)
    if (
        user is None
        or not user.active
        or not hmac.compare_digest(
            password_fingerprint(settings.secret_key, user.password_hash), link.password
        )
    ):
        raise InputError("this sign-in link is no longer valid: log in again", where="link")
    key, redis = USED_KEY.format(nonce=link.nonce), get_runtime().redis
    # the first POST sets the key; every later one (and every GET after it) finds it set
    used = not redis.set(key, 1, nx=True, ex=max_age + 120) if spend else bool(redis.exists(key))
    if used:
        raise InputError("this sign-in link was used already: log in again", where="link")
    return user, link.next_path
