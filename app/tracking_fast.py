"""The open pixel and the click redirect, answered ahead of Flask's routing.

They are most of a campaign's requests, and the work each does is small: verify the token's
signature, make one event durable, answer. Flask's request context, URL map, hooks, session
interface and response object cost more than that work, so a WSGI layer in front of the app answers
exactly `GET`/`HEAD /t/o/<token>` and `/t/c/<token>` and hands every other request to Flask. The
rules are those of every tracking endpoint (app.tracking): a tampered or unknown token gets 404 and
records nothing; an event is answered 2xx/302 only once it is durable (in Redis, or in the web
process's spool while Redis is down), else 503 with Retry-After; a click's destination comes from
the campaign's stored links (kept in this process, cached in Redis, read from the database), never
from the request. Nothing here opens a session cookie.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.urls import iri_to_uri

from campaigns.events.spool import EventSpool
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import PIXEL, EventIntake, RawEvent
from campaigns.runtime import Runtime
from models import CampaignLink

log = logging.getLogger(__name__)
LINK_CACHE_TTL = 3600
KNOWN_LINKS_MAX = 50_000
PREFIXES = {"/t/o/": "open", "/t/c/": "click"}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]


class NotDurable(Exception):
    """The event could be made durable nowhere: answer 503, record nothing."""


def intake_for(app: Flask) -> EventIntake:
    """The web process's one intake (its spool's drain state is shared by every tracking route);
    made on first use, with the runtime's Redis of that moment."""
    intake: EventIntake | None = app.extensions.get("mailramp_intake")
    if intake is None:
        rt: Runtime = app.extensions["mailramp"]
        intake = EventIntake(rt.redis, EventSpool(rt.settings.instance_path / "spool"))
        app.extensions["mailramp_intake"] = intake
    return intake


def push(app: Flask, environ: dict[str, Any], ref: TrackingRef, value: float = 0.0, key: str = "") -> None:
    """Make the event durable or raise NotDurable."""
    accepted = intake_for(app).accept(
        RawEvent(
            kind=ref.kind,
            send_id=ref.send_id,
            link_id=ref.link_id,
            item_id=ref.item_id,
            value=value,
            user_agent=environ.get("HTTP_USER_AGENT", "")[:500],
            ip=environ.get("REMOTE_ADDR") or "",
            method=environ.get("REQUEST_METHOD", "GET"),
            at=time.time(),
            key=key or os.urandom(16).hex(),  # complete here: the event is not copied again
        )
    )
    if not accepted:
        raise NotDurable()


def _json(status: str, error: str, extra: list[tuple[str, str]] | None = None) -> Answer:
    body = json.dumps({"error": error}).encode()
    return status, [("Content-Type", "application/json"), *(extra or [])], body


NOT_FOUND: Answer = ("404 NOT FOUND", [("Content-Type", "text/plain; charset=utf-8")], b"not found\n")
NOT_DURABLE = _json(
    "503 SERVICE UNAVAILABLE", "the event could not be recorded now; retry later", [("Retry-After", "5")]
)
REDIS_DOWN = _json("503 SERVICE UNAVAILABLE", "temporarily unavailable, try again", [("Retry-After", "5")])
WRONG_METHOD = _json("405 METHOD NOT ALLOWED", "use GET", [("Allow", "GET, HEAD")])
PIXEL_HEADERS = [("Content-Type", "image/gif"), ("Cache-Control", "no-store, max-age=0")]


class TrackingFastPath:
    """WSGI middleware: `app.wsgi_app = TrackingFastPath(app, app.wsgi_app)`."""

    def __init__(self, app: Flask, inner: WsgiApp) -> None:
        self.app = app
        self.inner = inner
        self._links: dict[int, tuple[str, str]] = {}
        self._signers: dict[str, TokenSigner] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        kind = PREFIXES.get(path[:5])
        if kind is None:
            return self.inner(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            status, headers, body = WRONG_METHOD
        else:
            try:
                status, headers, body = self._answer(kind, path[5:], environ)
            except NotDurable:
                status, headers, body = NOT_DURABLE
            except RedisError as exc:
                log.warning("tracking: Redis unavailable: %s", exc)
                status, headers, body = REDIS_DOWN
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]

    def _signer(self) -> TokenSigner:
        rt: Runtime = self.app.extensions["mailramp"]
        secret = rt.settings.secret_key
        signer = self._signers.get(secret)
        if signer is None:  # derives its HMAC key once, not on every request
            signer = self._signers[secret] = TokenSigner(secret)
        return signer

    def _answer(self, kind: str, token: str, environ: dict[str, Any]) -> Answer:
        signer = self._signer()
        ref = signer.verify(token, expected_kind=kind)
        if ref is None:
            return NOT_FOUND
        if kind == "open":
            push(self.app, environ, ref)
            return "200 OK", PIXEL_HEADERS, PIXEL
        assert ref.link_id is not None
        split = self._destination(ref.link_id)
        if split is None:
            return NOT_FOUND
        push(self.app, environ, ref)
        # Hand the shop a conversion token for this send, so a later purchase can be attributed.
        conversion = signer.sign(TrackingRef("conversion", ref.send_id))
        location = f"{split[0]}{quote_plus(conversion)}{split[1]}"
        body = f'<!doctype html>\n<a href="{html.escape(location)}">Continue</a>\n'.encode()
        return "302 FOUND", [("Content-Type", "text/html; charset=utf-8"), ("Location", location)], body

    def _destination(self, link_id: int) -> tuple[str, str] | None:
        """The destination split around where the `mr` parameter goes: (before, after), as URI
        (ASCII) text. Kept in this process's memory (a link id's destination never changes), else
        read from the Redis cache, else the database; with none of them reachable the click cannot
        be served."""
        split = self._links.get(link_id)
        if split is None:
            url = self._look_up(link_id)
            if url is None:
                return None
            parts = urlsplit(url)
            query = f"{parts.query}&mr=" if parts.query else "mr="
            before = urlunsplit(parts._replace(query=query, fragment=""))
            split = (iri_to_uri(before), iri_to_uri(f"#{parts.fragment}") if parts.fragment else "")
            if len(self._links) >= KNOWN_LINKS_MAX:
                self._links.clear()
            self._links[link_id] = split
        return split

    def _look_up(self, link_id: int) -> str | None:
        rt: Runtime = self.app.extensions["mailramp"]
        intake = intake_for(self.app)
        key = f"mailramp:link:{link_id}"
        redis_up, cached = intake.redis_presumed_up(), None
        if redis_up:
            try:
                cached = rt.redis.get(key)
            except RedisError:
                intake.redis_failed()
                redis_up = False
        if cached is not None:
            return str(cached.decode())
        try:
            with rt.session() as session:
                url = session.scalar(sa.select(CampaignLink.url).where(CampaignLink.id == link_id))
        except SQLAlchemyError as exc:
            raise NotDurable() from exc
        if url is not None and redis_up:
            with contextlib.suppress(RedisError):
                rt.redis.set(key, url, ex=LINK_CACHE_TTL)
        return url
