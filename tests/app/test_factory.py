from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def test_openapi_is_public_and_lists_every_api_route(client: FlaskClient, app: Any) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule.removeprefix("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            from app.api.spec import openapi_path

            assert (openapi_path(path), method.lower()) in documented, f"{method} {rule.rule} is undocumented"


def test_pages_need_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
