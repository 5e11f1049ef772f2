"""Login throttling that slows password guessing and never locks the account's owner out.

Only failed logins count, over the last one to two minutes in Redis (shared by every web process):
- per client address, over every account (one client guessing many accounts),
- per account, from every client (many clients guessing one account), and
- per browser that signed in to the account before: it carries a signed device cookie and is held
  only by its own counter, so a stranger's wrong guesses never keep the owner's browser out.

`state` says, first match wins:
1. a known browser whose own counter is full: "blocked" (429, nothing checked);
2. a new browser whose client address's counter is full: "blocked" (429, nothing checked: one
   address cannot make the server check passwords without limit);
3. a new browser while the account's counter is full: "held" -- the password is checked, but the
   answer is the same whatever it was ("if the password was right, we emailed a sign-in link"), every
   try counts as a failure, and a job is enqueued either way (`app.login_links`): the owner gets in
   through the link, a guesser learns nothing from a held try;
4. otherwise "open": the password decides.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis
from werkzeug.wrappers import Response

DEVICE_COOKIE = "mailramp_device"
DEVICE_DAYS = 30


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="mailramp.login-device")


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _known_device(email: str) -> str | None:
    """The nonce of this browser's device cookie when it was issued for this account."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        claim = _serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(claim, dict) or claim.get("a") != _account(email):
        return None
    nonce = claim.get("n")
    return nonce if isinstance(nonce, str) else None


def _keys(email: str, minute: int) -> list[str]:
    """The device key alone for a known browser; else the client's key, then the account's."""
    device = _known_device(email)
    if device is not None:
        return [f"mailramp:login:device:{device}:{minute}"]
    client = request.remote_addr or "-"
    return [f"mailramp:login:client:{client}:{minute}", f"mailramp:login:account:{_account(email)}:{minute}"]


def _minute() -> int:
    """The counters' clock: the current minute since the epoch."""
    return int(time.time() // 60)


def state(redis: Redis, email: str) -> str:
    """ "open", "held" or "blocked" (the module's rules). Failures in this minute and the one before
    count (so the count never resets at a minute boundary: a full counter holds one to two minutes)."""
    limit = int(current_app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    minute = _minute()
    current, previous = _keys(email, minute), _keys(email, minute - 1)
    counts = redis.mget(current + previous)
    n = len(current)
    full = [int(counts[i] or 0) + int(counts[n + i] or 0) >= limit for i in range(n)]
    if full[0]:
        return "blocked"  # a known browser's own counter, or a new browser's client address
    return "held" if n == 2 and full[1] else "open"


def record_failure(redis: Redis, email: str) -> None:
    pipe = redis.pipeline()
    for key in _keys(email, _minute()):
        pipe.incr(key)
        pipe.expire(key, 180)
    pipe.execute()


def remember_device(response: Response, email: str) -> Response:
    """After a successful login: this browser is known for this account from now on."""
    token = _serializer().dumps({"a": _account(email), "n": secrets.token_urlsafe(12)})
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response
