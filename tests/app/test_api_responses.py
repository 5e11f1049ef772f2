"""Every operation's success answers are described in /api/v1/openapi.json: a 2xx other than 204
names its body (a model's fields, a `$ref`, a CSV or NDJSON text), never a bare "JSON object"."""

from __future__ import annotations

from typing import Any

from app.api.spec import responses


def _described(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _described(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if schema.get("type") == "string":  # CSV and NDJSON exports
        return True
    return bool(schema.get("properties") or schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf"))


def undescribed(document: dict[str, Any]) -> list[str]:
    components = document["components"]["schemas"]
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                if not code.startswith("2") or code == "204":
                    continue
                content = answer.get("content") or {}
                if not content:
                    missing.append(f"{method.upper()} {path} {code}: no content")
                for kind, media in content.items():
                    if not _described(media.get("schema") or {}, components):
                        missing.append(f"{method.upper()} {path} {code} {kind}: {media.get('schema')}")
    return missing


def test_every_success_answer_has_a_described_body(api: Any) -> None:
    document = api.get("/api/v1/openapi.json").json
    assert sum(len(ops) for ops in document["paths"].values()) >= 100
    assert undescribed(document) == []


def test_a_bare_object_is_found() -> None:
    """The check can fail: an operation answering a bare JSON object is named."""
    bare = {
        "components": {"schemas": {}},
        "paths": {"/x": {"get": {"responses": responses("GET", 200, None, "application/json", True)}}},
    }
    assert undescribed(bare) == ["GET /x 200 application/json: {'type': 'object'}"]


def test_each_status_code_gets_its_own_body(api: Any) -> None:
    document = api.get("/api/v1/openapi.json").json
    answers = document["paths"]["/rollouts/{rollout_id}/advance"]["post"]["responses"]
    ok, asked = (answers[c]["content"]["application/json"]["schema"] for c in ("200", "202"))
    assert (ok["title"], asked["title"]) == ("RolloutTransitioned", "ApprovalAsked")
    status = ok["properties"]
    assert "audit" in status and {
        "forecast",
        "gates",
        "maturation",
        "next_actions",
        "pending_approvals",
    } <= set(status)
