"""Sign-in links: how a new browser gets into an account that strangers' failed logins are holding.

While an account's failure counter is full (`app.login_throttle`), a browser that has not signed in to
it before does not sign in with the password alone: the web process answers every try the same way
("if the password was right, we emailed a link") and enqueues `mail_sign_in_link` for every try, with
the user's id only when the password was right, so neither the answer nor its timing tells a guesser
anything. The worker signs the link here (the link itself never sits in Redis) and mails it through
the one message builder, like a signup's confirmation.

A link names the user, a single-use nonce, the SHA-256 of a nonce kept in the asking browser's cookie
(so the link works only in that browser), a keyed fingerprint of the password hash (a password change
kills it) and the page to open after. It expires after `max_age` seconds and is spent on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from campaigns.errors import InputError

log = logging.getLogger(__name__)
SALT = "mailramp.sign-in-link"
USED_KEY = "mailramp:login:link-used:{nonce}"
BUDGET_KEY = "mailramp:login:link-mails:{user_id}:{hour}"


def clock() -> float:
    """The time links are issued and checked against (tests move it)."""
    return time.time()


@dataclass(frozen=True)
class SignInLink:
    user_id: int
    nonce: str  # spent on first use
    browser: str  # SHA-256 of the asking browser's cookie nonce
    password: str  # keyed fingerprint of the password hash at issue
    next_path: str
    issued_at: int


def browser_digest(cookie_nonce: str) -> str:
    return hashlib.sha256(cookie_nonce.encode()).hexdigest()


def password_fingerprint(secret_key: str, password_hash: str) -> str:
    return hmac.new(secret_key.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def link_token(secret_key: str, link: SignInLink) -> str:
    return str(
        _serializer(secret_key).dumps(
            [link.user_id, link.nonce, link.browser, link.password, link.next_path, link.issued_at]
        )
    )


def read_link(secret_key: str, token: str, max_age: int) -> SignInLink:
    """The link's claims, or an InputError saying why it cannot be used (where="link")."""
    try:
        raw = _serializer(secret_key).loads(token)
        link = SignInLink(int(raw[0]), str(raw[1]), str(raw[2]), str(raw[3]), str(raw[4]), int(raw[5]))
    except (BadSignature, TypeError, ValueError, IndexError):
        raise InputError("this sign-in link is not valid: log in again", where="link") from None
    if not 0 <= clock() - link.issued_at <= max_age:
        raise InputError("this sign-in link has expired: log in again for a new one", where="link")
    return link


def mail_sign_in_link(
    user_id: int | None,
    nonce: str,
    browser: str,
    next_path: str,
    link_base: str,
    sender: str,
    minutes: int,
    per_hour: int,
) -> str:
    """rq job (the `default` queue): mail the link when `user_id` names an active user, at most
    `per_hour` a user per hour (so whoever knows the password cannot flood the owner's mailbox).
    A try with a wrong password enqueues this too, with no user: it sends nothing."""
    if user_id is None:
        return "nothing to send"
    from campaigns import runtime
    from campaigns.privacy.signup import deliver
    from campaigns.sending.builders import notice_builder
    from models import User

    rt = runtime.current()
    settings = rt.settings
    budget = BUDGET_KEY.format(user_id=user_id, hour=int(clock() // 3600))
    pipe = rt.redis.pipeline()
    pipe.incr(budget)
    pipe.expire(budget, 7200)
    if int(pipe.execute()[0]) > per_hour:
        log.warning("sign-in link for user %s not mailed: %s this hour already", user_id, per_hour)
        return "over budget"
    with rt.session() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return "no such user"
        link = SignInLink(
            user_id,
            nonce,
            browser,
            password_fingerprint(settings.secret_key, user.password_hash),
            next_path,
            int(clock()),
        )
        url = link_base + link_token(settings.secret_key, link)
        text = (
            "Hello,\n\nsomeone signed in to mailramp as you, with your password, from a browser that has not "
            "signed in to your account before, while your account was receiving many failed sign-ins.\n\n"
            f"If it was you, open this link in that same browser within {minutes} minutes; it works once:\n\n"
            f"{url}\n\nIf it was not you, someone knows your password: change it now.\n"
        )
        message = notice_builder(session, settings, sender).build_notice(
            email=user.email,
            name="",
            subject="Your mailramp sign-in link",
            text=text,
            message_id_seed=f"sign-in:{nonce}",
        )
    deliver(settings.smtp_url, message, what="sign-in link")
    return "mailed"
