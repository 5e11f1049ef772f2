"""Configurable limits (README, configuration): request size, imports, templates; and the https
base URL that RFC 8058 one-click unsubscribe needs outside local development."""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app


def _app(app: Flask, tmp_path: Path, **config: Any) -> Flask:
    """A second app on the same database and Redis as the `app` fixture, with other settings."""
    keys = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "BASE_URL", "TESTING")
    return create_app({**{k: app.config[k] for k in keys}, **config}, instance_path=str(tmp_path / "i2"))


def _token(flask_app: Flask) -> dict[str, str]:
    from app.auth import create_user, issue_token
    from app.extensions import db
    from models import Role

    with flask_app.test_request_context():
        user = create_user("limits@example.com", "correct horse battery staple", Role.admin)
        token = issue_token(user)
        db().commit()
    return {"Authorization": f"Bearer {token}"}


def test_request_body_size_is_limited(app: Flask, tmp_path: Path) -> None:
    small = _app(app, tmp_path, MAX_CONTENT_LENGTH=64 * 1024)
    headers = _token(small)
    body = b"email\n" + b"x@example.com\n" * 10_000  # 140 KB
    response = small.test_client().post(
        "/api/v1/contacts/import", data=body, content_type="text/csv", headers=headers
    )
    assert response.status_code == 413
    assert "error" in response.json
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024 * 1024  # the default


def test_an_import_over_the_row_limit_fails_at_once(app: Flask, tmp_path: Path) -> None:
    limited = _app(app, tmp_path, IMPORT_MAX_ROWS=1000)
    headers = _token(limited)
    rows = b"".join(b"c%d@example.com\n" % i for i in range(200_000))
    packed = gzip.compress(b"email\n" + rows)  # a small upload that expands a lot
    assert len(packed) < 1_000_000
    response = limited.test_client().post(
        "/api/v1/contacts/import", data=packed, content_type="text/csv", headers=headers
    )
    assert response.status_code == 201, response.json
    run = response.json
    assert (run["status"], run["rows_imported"]) == ("failed", 0)
    assert run["errors"][0]["field"] == "file" and "over 1,000 rows" in run["errors"][0]["error"]


def test_an_import_over_the_size_limit_fails_at_once(app: Flask, tmp_path: Path) -> None:
    limited = _app(app, tmp_path, IMPORT_MAX_BYTES=100_000)
    headers = _token(limited)
    packed = gzip.compress(b"email,note\n" + b"a@example.com," + b"x" * 5_000_000 + b"\n")
    response = limited.test_client().post(
        "/api/v1/contacts/import",
        data={"file": (io.BytesIO(packed), "big.csv.gz")},
        content_type="multipart/form-data",
        headers=headers,
    )
    run = response.json
    assert (run["status"], run["rows_imported"]) == ("failed", 0)
    assert "over 100,000 bytes" in run["errors"][0]["error"]


@pytest.mark.parametrize(
    ("control_html", "error"),
    [
        ("{{ 'a' * 30000000 }}", "over 2,097,152 characters"),
        ("{{ 'x' | center(1000000000) }}", "above 2,097,152"),
        ("{{ '%0999999999d'|format(1) }}", "above 2,097,152"),  # issue 21: 17 s and 1.3 GB before
        ("{{ '{:>999999999}'.format(1) }}", "above 2,097,152"),  # issue 21: 1.2 GB before
        ("{% for i in range(100000) %}{{ 'abcdefghij' * 10 }}{% endfor %}", "rendered text is over"),
    ],
)
def test_templates_cannot_build_huge_values(api: Any, control_html: str, error: str) -> None:
    body = {"name": "t", "subject": "Hi", "control_html": control_html}
    response = api.post("/api/v1/templates", json=body)
    assert response.status_code == 400
    assert response.json["where"] == "control_html" and error in response.json["error"]


def test_template_render_time_and_size_are_bounded(app: Flask, api: Any, tmp_path: Path) -> None:
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    quick = _app(app, tmp_path, TEMPLATE_RENDER_SECONDS=0.5)
    headers = _token(quick)
    response = quick.test_client().post(
        "/api/v1/templates", json={"name": "slow", "subject": "Hi", "control_html": slow}, headers=headers
    )
    assert response.status_code == 400
    assert "took over 0.5 s" in response.json["error"]
    huge = "x" * (300 * 1024)
    response = api.post("/api/v1/templates", json={"name": "big", "subject": "Hi", "control_html": huge})
    assert (response.status_code, response.json["where"]) == (400, "control_html")
    assert "TEMPLATE_MAX_BYTES" in response.json["error"]
    fine = api.post("/api/v1/templates", json={"name": "ok", "subject": "Hi {{ contact.first_name }}"})
    assert fine.status_code == 201


def test_base_url_must_be_https_in_production(app: Flask, tmp_path: Path, caplog: Any) -> None:
    with pytest.raises(RuntimeError, match="must be https"):
        _app(app, tmp_path, ENV="production", BASE_URL="http://mail.shop.example")
    assert _app(app, tmp_path, ENV="production", BASE_URL="https://mail.shop.example")
    with caplog.at_level(logging.WARNING):
        _app(app, tmp_path, BASE_URL="http://mail.shop.example")
    assert "not https" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _app(app, tmp_path, BASE_URL="http://127.0.0.1:5000")  # local development: quiet
    assert "not https" not in caplog.text
