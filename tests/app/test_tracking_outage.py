"""Tracking while Redis is unreachable: a click still redirects and an unsubscribe is still honoured,
their events kept in the web process's spool and drained into the stream once Redis answers; when an
event cannot be made durable anywhere the endpoint answers 503, never 2xx."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.events.spool import EventSpool
from campaigns.events.tracking import STREAM
from models import Contact, Event
from tests.app.test_tracking import HUMAN_UA, path_of, sent_one
from tests.conftest import SmtpSink, free_port


def unreachable_redis() -> Redis:
    return Redis(port=free_port(), socket_connect_timeout=0.5)


def test_click_and_unsubscribe_work_while_redis_is_down_and_arrive_later(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    click = path_of(next(u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u))
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    unsubscribe = path_of(smtp_sink.messages[0]["List-Unsubscribe"].split(",")[0].strip("<>"))
    real_redis = rt.redis
    rt.redis = unreachable_redis()
    try:
        response = client.get(click, headers={"User-Agent": HUMAN_UA})
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://shop.example/best?mr=")
        assert client.get(pixel).status_code == 200
        assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 204
    finally:
        rt.redis = real_redis
    spool = EventSpool(rt.settings.instance_path / "spool")
    assert spool.pending() == 3
    assert real_redis.xlen(STREAM) == 0

    app.extensions["mailramp_intake"].redis = real_redis
    app.extensions["mailramp_intake"]._redis_down_until = 0.0
    app.extensions["mailramp_intake"].spool._next_look = 0.0
    assert client.get(pixel).status_code == 200  # Redis answers again: this request drains the spool
    assert spool.pending() == 0
    report = ingest(rt)
    assert report.stored == 4
    kinds = sorted(session.scalars(sa.select(Event.kind)))
    assert kinds == ["click", "open", "open", "unsubscribe"]
    assert session.scalars(sa.select(Contact.status)).one() == "unsubscribed"


def test_an_event_that_cannot_be_made_durable_is_answered_503(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    rt, html = sent_one(app, session, smtp_sink)
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    unsubscribe = path_of(smtp_sink.messages[0]["List-Unsubscribe"].split(",")[0].strip("<>"))
    rt.settings.instance_path.mkdir(parents=True, exist_ok=True)
    (rt.settings.instance_path / "spool").write_text("a file where the spool folder should be")
    real_redis = rt.redis
    rt.redis = unreachable_redis()
    try:
        assert client.get(pixel).status_code == 503
        response = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
    finally:
        rt.redis = real_redis
    assert real_redis.xlen(STREAM) == 0


def test_spool_drain_is_idempotent_through_dedupe_keys(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    """A drain that crashed after its XADDs but before truncating is repeated: stored once."""
    rt, html = sent_one(app, session, smtp_sink)
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    real_redis = rt.redis
    rt.redis = unreachable_redis()
    try:
        assert client.get(pixel).status_code == 200
    finally:
        rt.redis = real_redis
    spool = EventSpool(rt.settings.instance_path / "spool")
    (path,) = list(spool.directory.glob("events-*.ndjson"))
    saved = path.read_bytes()
    assert spool.drain(real_redis, STREAM) == 1
    path.write_bytes(saved)  # as if the truncation had not happened
    assert spool.drain(real_redis, STREAM) == 1
    assert real_redis.xlen(STREAM) == 2
    report = ingest(rt)
    assert (report.stored, report.duplicates) == (1, 1)


def test_tracking_requests_open_no_session_and_other_pages_keep_theirs(
    app: Any, client: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    from flask.sessions import NullSession

    _, html = sent_one(app, session, smtp_sink)
    pixel = path_of(re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1))  # type: ignore[union-attr]
    interface = app.session_interface
    with app.test_request_context(pixel):
        from flask import request

        assert isinstance(interface.open_session(app, request), NullSession)
    for path in ("/templates", "/tokens", "/login"):
        with app.test_request_context(path):
            from flask import request

            assert not isinstance(interface.open_session(app, request), NullSession), path
    assert "Set-Cookie" not in client.get(pixel).headers
