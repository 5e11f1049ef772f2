"""/t/v conversions: POST only, revenue finite and within range, whole order ids; and no tracking
endpoint answers 500 while Redis is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from app import create_app
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.events.tracking import STREAM, RawEvent, conversion_key
from tests.conftest import free_port


def _token(app: Flask, kind: str, send_id: int = 7, link_id: int | None = None) -> str:
    return TokenSigner(app.config["SECRET_KEY"]).sign(TrackingRef(kind, send_id, link_id=link_id))


def _events(redis: Redis) -> list[RawEvent]:
    return [RawEvent.from_fields(f) for _, f in redis.xrange(STREAM)]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "-1000", "-0.01", "abc", "1000001"])
def test_bad_revenue_is_refused(app: Flask, client: FlaskClient, redis: Redis, value: str) -> None:
    response = client.post(f"/t/v/{_token(app, 'conversion')}", data={"value": value, "order": "A-1"})
    assert response.status_code == 400
    assert response.json["where"] == "value"
    assert _events(redis) == []


def test_conversions_are_counted_by_post_only(app: Flask, client: FlaskClient, redis: Redis) -> None:
    token = _token(app, "conversion")
    assert client.get(f"/t/v/{token}?value=10&order=A-1").status_code == 405  # a link prefetcher
    assert _events(redis) == []
    assert client.post(f"/t/v/{token}", data={"value": "19.99", "order": "A-1"}).status_code == 204
    assert [e.value for e in _events(redis)] == [19.99]


def test_long_order_ids_do_not_collide(app: Flask, client: FlaskClient, redis: Redis) -> None:
    token = _token(app, "conversion")
    prefix = "ORDER-" + "0" * 120
    for order in (prefix + "1", prefix + "2", prefix + "1"):
        assert client.post(f"/t/v/{token}", data={"value": "5", "order": order}).status_code == 204
    keys = [e.key for e in _events(redis)]
    assert keys[0] != keys[1] and keys[0] == keys[2]  # a replay keeps its key, a new order gets its own
    assert all(len(k) <= 100 for k in keys)  # fits the events.dedupe_key column
    assert conversion_key(1, 2, prefix + "1") != conversion_key(1, 2, prefix + "2")


def test_no_tracking_endpoint_answers_500_while_redis_is_down(app: Flask, tmp_path: Path) -> None:
    down = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "DATABASE_URL": app.config["DATABASE_URL"],
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "BASE_URL": "http://mailramp.test",
        },
        instance_path=str(tmp_path / "down"),
    )
    client = down.test_client()
    calls: list[Any] = [
        client.get(f"/t/o/{_token(app, 'open')}"),
        client.get(f"/t/c/{_token(app, 'click', link_id=1)}"),
        client.post(f"/t/u/{_token(app, 'unsubscribe')}", data={"List-Unsubscribe": "One-Click"}),
        client.post(f"/t/v/{_token(app, 'conversion')}", data={"value": "3"}),
    ]
    for response in calls:
        assert response.status_code != 500 and response.status_code < 600
        # 2xx once the event is durable (a local spool), else 503: the sender retries; never a 500
        assert response.status_code in (200, 204, 302, 404, 503), response.status_code
