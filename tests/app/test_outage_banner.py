"""While Redis or the database is unreachable the UI says so: a banner on every page, and a 503 page
(that needs neither) when a page cannot load its data; both go away when the service returns."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from app.health import DATABASE_DOWN, REDIS_DOWN
from models.db import make_engine, make_session_factory
from tests.app.test_ui_shell import PASSWORD, login
from tests.conftest import free_port


@pytest.fixture()
def viewer(app: Flask) -> str:
    from app.auth import create_user
    from app.extensions import db
    from models import Role

    with app.test_request_context():
        create_user("viewer@example.com", PASSWORD, Role.viewer)
        db().commit()
    return "viewer@example.com"


def fresh_probe(app: Flask) -> None:
    app.extensions.pop("mailramp_probe", None)


def test_banner_while_redis_is_down(app: Flask, client: FlaskClient, viewer: str) -> None:
    login(client, viewer)
    assert REDIS_DOWN not in client.get("/").get_data(as_text=True)
    rt = app.extensions["mailramp"]
    real = rt.redis
    rt.redis = Redis(port=free_port())
    fresh_probe(app)
    try:
        page = client.get("/")
        assert page.status_code == 200
        assert REDIS_DOWN in page.get_data(as_text=True)
    finally:
        rt.redis = real
        fresh_probe(app)
    assert REDIS_DOWN not in client.get("/").get_data(as_text=True)


def test_a_page_needing_the_database_answers_503_while_it_is_down(
    app: Flask, client: FlaskClient, viewer: str
) -> None:
    login(client, viewer)
    rt = app.extensions["mailramp"]
    real: Any = rt.session_factory
    rt.session_factory = make_session_factory(
        make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    )
    fresh_probe(app)
    try:
        page = client.get("/campaigns")
        assert page.status_code == 503
        assert page.headers["Retry-After"]
        assert DATABASE_DOWN in page.get_data(as_text=True)
    finally:
        rt.session_factory = real
        fresh_probe(app)
    assert client.get("/campaigns").status_code == 200
