"""Tracking endpoints: verify the signed token, make the raw event durable, answer at once.

A tampered or unknown token gets 404 and records nothing. An event is answered 2xx only once it is
durable (in Redis, or in the web process's spool while Redis is down; see campaigns.events.tracking); when it
cannot be, the answer is 503 and the client may retry. The open pixel and the click redirect, most of
the traffic, are answered ahead of Flask by app.tracking_fast; unsubscribes and conversions are here.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
)
from flask.blueprints import BlueprintSetupState
from flask.sessions import NullSession, SessionInterface, SessionMixin
from flask.wrappers import Request
from redis.exceptions import RedisError

from app.extensions import get_runtime
from app.tracking_fast import NotDurable, push
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import MAX_CONVERSION_VALUE, order_key

tracking = Blueprint("tracking", __name__, url_prefix="/t")
TRACKING_PATHS = "/t/"


class _NoSessionOnTracking(SessionInterface):
    """Tracking requests carry no login and write no session: opening the signed session cookie
    (a serializer per request) would be a good part of the pixel's cost. Other paths are served by
    the app's own session interface, whatever it is."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(TRACKING_PATHS):  # "/t/", never "/templates" or "/tokens"
            return self.make_null_session(app)
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, NullSession):
            return
        self.inner.save_session(app, session, response)

    def __getattribute__(self, name: str) -> Any:
        """Everything but opening and saving is the app's own interface's (its cookie settings...)."""
        if name in ("open_session", "save_session", "inner", "make_null_session"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)


@tracking.record_once
def _skip_sessions(state: BlueprintSetupState) -> None:
    app: Flask = state.app  # type: ignore[assignment]
    app.session_interface = _NoSessionOnTracking(app.session_interface)


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


@tracking.errorhandler(NotDurable)
def _not_durable(_exc: NotDurable) -> Response:
    response = make_response({"error": "the event could not be recorded now; retry later"}, 503)
    response.headers["Retry-After"] = "5"
    return response


def _push(ref: TrackingRef, value: float = 0.0, key: str = "") -> None:
    push(current_app._get_current_object(), request.environ, ref, value=value, key=key)  # type: ignore[attr-defined]


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


# Digits with an optional decimal part: no sign, exponent, underscore (`1_000`), spaces (` 5 `),
# non-ASCII digits, nan or inf, all of which float() takes.
_PLAIN_NUMBER = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?")


@tracking.route("/v/<token>", methods=["POST"])
def conversion(token: str) -> Response:
    """A conversion from the shop: the `mr` token the click redirect added, with value and order id.
    POST only (a link prefetcher's GET must not count); the value is revenue, never a refund:
    negative values need an authenticated `POST /api/v1/conversions`."""
    ref = _verify(token, "conversion")
    raw_value = request.values.get("value", "0")
    value = float(raw_value) if _PLAIN_NUMBER.fullmatch(raw_value) else math.nan
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
