"""Login throttling that slows password guessing without locking the account's owner out.

Only failed logins count, over the last one to two minutes in Redis (shared by every web process):
- per client address, over every account (one client guessing many accounts), and
- per account, from every client (many clients guessing one account).
A browser that signed in to the account before carries a signed device cookie for it; such a browser
is held only by its own failure counter, so a stranger's wrong guesses (which fill the client and
account counters) never keep the owner's browser out. A new browser waits while the account's
counter is full (one minute at most); the right password from a known browser always gets in.
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
    device = _known_device(email)
    if device is not None:
        return [f"mailramp:login:device:{device}:{minute}"]
    client = request.remote_addr or "-"
    return [f"mailramp:login:client:{client}:{minute}", f"mailramp:login:account:{_account(email)}:{minute}"]


def is_throttled(redis: Redis, email: str) -> bool:
    """Failures in this minute and the one before (so the count never resets at a minute boundary:
    a client that reached the limit waits one to two minutes)."""
    limit = int(current_app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    minute = int(time.time() // 60)
    current, previous = _keys(email, minute), _keys(email, minute - 1)
    counts = redis.mget(current + previous)
    n = len(current)
    return any(int(counts[i] or 0) + int(counts[n + i] or 0) >= limit for i in range(n))


def record_failure(redis: Redis, email: str) -> None:
    pipe = redis.pipeline()
    for key in _keys(email, int(time.time() // 60)):
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
