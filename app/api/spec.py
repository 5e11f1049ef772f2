"""One decorator registers an API route, its role check and its OpenAPI operation together,
so the document at /api/v1/openapi.json cannot drift from the routes that exist."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint

from app.auth import require_role
from models import Role

F = TypeVar("F", bound=Callable[..., Any])

api = Blueprint("api", __name__, url_prefix="/api/v1")
OPERATIONS: dict[str, dict[str, Any]] = {}  # "/contacts/{id}" -> {"get": {...}}
_FLASK_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> str:
    return _FLASK_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def route(
    rule: str,
    method: str,
    *,
    role: Role | None,
    summary: str,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    response: dict[str, Any] | None = None,
    content: str = "application/json",
    tag: str = "",
) -> Callable[[F], F]:
    """`body` and `response` are JSON Schemas; `query` maps parameter names to descriptions."""

    def decorator(view: F) -> F:
        guarded = require_role(role)(view) if role is not None else view
        api.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[method])
        params: list[dict[str, Any]] = [
            {
                "name": m.group(2),
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if m.group(1) == "int" else "string"},
            }
            for m in _FLASK_PARAM.finditer(rule)
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in (query or {}).items()
        ]
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": view.__name__,
            "tags": [tag] if tag else [],
            "description": f"Needs the `{role.value}` role." if role else "Public.",
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {content: {"schema": response or {"type": "object"}}},
                },
                "400": {
                    "description": "Bad input: says what and where",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                "401": {"description": "No or bad token"},
                "403": {"description": "Role too low"},
                "404": {"description": "Not found"},
            },
        }
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        OPERATIONS.setdefault(openapi_path(rule), {})[method.lower()] = op
        return guarded

    return decorator


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mailramp API", "version": version},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "where": {"type": "string"}},
                    "required": ["error"],
                }
            },
        },
        "paths": OPERATIONS,
    }
