"""Tracking endpoints: verify the signed token, push the raw event to Redis, answer at once.

A tampered or unknown token gets 404 and records nothing. A click's destination is looked up from the
campaign's stored links (cached in Redis), never taken from the request.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from urllib.parse import urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, make_response, redirect, render_template, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response as WerkzeugResponse

from app.extensions import db, get_runtime
from campaigns.tokens import TokenSigner, TrackingRef
from campaigns.tracking import MAX_CONVERSION_VALUE, PIXEL, RawEvent, order_key, push
from models import CampaignLink

tracking = Blueprint("tracking", __name__, url_prefix="/t")
LINK_CACHE_TTL = 3600


@lru_cache(maxsize=4)
def _signer_for(secret_key: str) -> TokenSigner:
    return TokenSigner(secret_key)  # derives its HMAC key once, not on every tracking request


def _signer() -> TokenSigner:
    return _signer_for(get_runtime().settings.secret_key)


def _verify(token: str, kind: str) -> TrackingRef:
    ref = _signer().verify(token, expected_kind=kind)
    if ref is None:
        abort(404)
    return ref


def _push(ref: TrackingRef, value: float = 0.0, key: str = "") -> None:
    push(
        get_runtime().redis,
        RawEvent(
            kind=ref.kind,
            send_id=ref.send_id,
            link_id=ref.link_id,
            item_id=ref.item_id,
            value=value,
            user_agent=request.headers.get("User-Agent", "")[:500],
            ip=request.remote_addr or "",
            method=request.method,
            at=time.time(),
            key=key,
        ),
    )


@tracking.route("/o/<token>")
def open_pixel(token: str) -> Response:
    _push(_verify(token, "open"))
    response = make_response(PIXEL)
    response.headers["Content-Type"] = "image/gif"
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


def _destination(link_id: int) -> str | None:
    redis = get_runtime().redis
    key = f"mailramp:link:{link_id}"
    cached = redis.get(key)
    if cached is not None:
        return cached.decode()
    url = db().scalar(sa.select(CampaignLink.url).where(CampaignLink.id == link_id))
    if url is not None:
        redis.set(key, url, ex=LINK_CACHE_TTL)
    return url


@tracking.route("/c/<token>", methods=["GET", "HEAD"])
def click(token: str) -> WerkzeugResponse:
    ref = _verify(token, "click")
    assert ref.link_id is not None
    url = _destination(ref.link_id)
    if url is None:
        abort(404)
    _push(ref)
    # Hand the shop a conversion token for this send, so a later purchase can be attributed.
    conversion = _signer().sign(TrackingRef("conversion", ref.send_id))
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    target = urlunsplit(parts._replace(query=query + urlencode({"mr": conversion})))
    return redirect(target, code=302)


@tracking.route("/u/<token>", methods=["GET"])
def unsubscribe_page(token: str) -> str:
    _verify(token, "unsubscribe")
    return render_template("tracking/unsubscribe.html", token=token, done=False)


@tracking.route("/u/<token>", methods=["POST"])
def unsubscribe(token: str) -> Response | str:
    """RFC 8058 one-click (List-Unsubscribe=One-Click in the body) and the page's own button."""
    ref = _verify(token, "unsubscribe")
    _push(ref, key=f"unsub:{ref.send_id}")
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response(status=204)
    return render_template("tracking/unsubscribe.html", token=token, done=True)


@tracking.route("/v/<token>", methods=["POST"])
def conversion(token: str) -> Response:
    """A conversion from the shop: the `mr` token the click redirect added, with value and order id.
    POST only (a link prefetcher's GET must not count); the value is revenue, never a refund:
    negative values need an authenticated `POST /api/v1/conversions`."""
    ref = _verify(token, "conversion")
    raw_value = request.values.get("value", "0")
    try:
        value = float(raw_value)
    except ValueError:
        value = math.nan
    if not (0 <= value <= MAX_CONVERSION_VALUE):  # also refuses nan and inf
        error = f"value must be a number from 0 to {MAX_CONVERSION_VALUE:g}, not {raw_value[:50]!r}"
        return make_response({"error": error, "where": "value"}, 400)
    order = request.values.get("order", "")
    if "\x00" in order:
        return make_response({"error": "must not contain NUL bytes", "where": "order"}, 400)
    _push(ref, value=value, key=order_key(str(ref.send_id), order) if order else "")
    return Response(status=204)


@tracking.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> Response:
    """The event could not be made durable: say so, so the sender retries, instead of a 500."""
    current_app.logger.warning("tracking: Redis unavailable: %s", exc)
    return make_response({"error": "temporarily unavailable, try again"}, 503, {"Retry-After": "5"})
