"""The open pixel and the click redirect answered ahead of Flask (app.tracking_fast): the same rules
as every tracking endpoint, through the same entry point gunicorn calls (`app.wsgi_app`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.campaign_records import register_links
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import STREAM, RawEvent
from tests.factories import add_campaign, add_template


def _signer(app: Flask) -> TokenSigner:
    return TokenSigner(app.config["SECRET_KEY"])


def _events(redis: Redis) -> list[RawEvent]:
    return [RawEvent.from_fields(f) for _, f in redis.xrange(STREAM)]


def _link(session: Session, url: str) -> int:
    campaign = add_campaign(session, add_template(session).id)
    link_id = register_links(session, campaign.id, {url}, {})[url]
    session.commit()
    return link_id


def test_the_pixel_answers_a_gif_with_no_cookie_and_records_one_open(
    app: Flask, client: FlaskClient, redis: Redis
) -> None:
    token = _signer(app).sign(TrackingRef("open", 41))
    response = client.get(f"/t/o/{token}", headers={"User-Agent": "Mail/1.0"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Cache-Control"] == "no-store, max-age=0"
    assert response.data.startswith(b"GIF89a") and "Set-Cookie" not in response.headers
    [event] = _events(redis)
    assert (event.kind, event.send_id, event.user_agent, event.method) == ("open", 41, "Mail/1.0", "GET")
    assert event.key and event.at > 0


def test_other_methods_are_refused_and_record_nothing(app: Flask, client: FlaskClient, redis: Redis) -> None:
    token = _signer(app).sign(TrackingRef("open", 41))
    response = client.post(f"/t/o/{token}")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert client.delete(f"/t/c/{_signer(app).sign(TrackingRef('click', 41, 1))}").status_code == 405
    assert _events(redis) == []


@pytest.mark.parametrize(
    "path", ["/t/o/", "/t/c/", "/t/o/o.1", "/t/o/o.1~", "/t/c/c.1.2~Zm9v", "/t/o/\u00e9~\u00e9"]
)
def test_malformed_tokens_get_404(client: FlaskClient, redis: Redis, path: str) -> None:
    assert client.get(path).status_code == 404
    assert _events(redis) == []


def test_click_keeps_the_stored_destinations_query_and_fragment_and_encodes_it(
    app: Flask, client: FlaskClient, session: Session, redis: Redis
) -> None:
    link_id = _link(session, "https://shop.example/caf\u00e9?utm_source=mail#reviews")
    token = _signer(app).sign(TrackingRef("click", 9, link_id))
    response = client.get(f"/t/c/{token}?url=https://evil.example/")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.isascii()
    parts = urlsplit(location)
    assert (parts.netloc, parts.path, parts.fragment) == ("shop.example", "/caf%C3%A9", "reviews")
    query = parse_qs(parts.query)
    assert query["utm_source"] == ["mail"]
    assert _signer(app).verify(query["mr"][0], expected_kind="conversion") == TrackingRef("conversion", 9)
    [event] = _events(redis)
    assert (event.kind, event.send_id, event.link_id) == ("click", 9, link_id)


def test_a_head_request_redirects_without_a_body(
    app: Flask, client: FlaskClient, session: Session, redis: Redis
) -> None:
    link_id = _link(session, "https://shop.example/best")
    response = client.head(f"/t/c/{_signer(app).sign(TrackingRef('click', 9, link_id))}")
    assert response.status_code == 302 and response.data == b""
    assert response.headers["Location"].startswith("https://shop.example/best?mr=")
    assert [e.method for e in _events(redis)] == ["HEAD"]


def test_a_click_on_an_unknown_link_gets_404(app: Flask, client: FlaskClient, redis: Redis) -> None:
    assert client.get(f"/t/c/{_signer(app).sign(TrackingRef('click', 9, 999_999))}").status_code == 404
    assert _events(redis) == []


def test_everything_else_is_flasks(client: FlaskClient, redis: Redis) -> None:
    assert client.get("/t/ox").status_code == 404
    assert client.get("/login").status_code == 200
    assert _events(redis) == []


def test_the_destination_survives_the_redis_cache_being_emptied(
    app: Flask, client: FlaskClient, session: Session, redis: Redis
) -> None:
    link_id = _link(session, "https://shop.example/a?b=c")
    token = _signer(app).sign(TrackingRef("click", 3, link_id))
    first: Any = client.get(f"/t/c/{token}")
    redis.delete(f"mailramp:link:{link_id}")
    second: Any = client.get(f"/t/c/{token}")
    assert first.headers["Location"].split("mr=")[0] == second.headers["Location"].split("mr=")[0]
    assert first.headers["Location"].startswith("https://shop.example/a?b=c&mr=")
    assert len(_events(redis)) == 2
