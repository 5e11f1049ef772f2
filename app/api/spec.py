"""One decorator registers an API route, its role check, its request validation and its OpenAPI
operation together, so the document at /api/v1/openapi.json cannot drift from the routes that exist
nor from what they accept.

How to declare a route:

    class WaveIn(ApiModel):                      # app.api.schema: strict, no unknown fields, no NUL
        limit: int | None = Field(None, ge=1)

    class PageQuery(QueryModel):                 # query strings: lax types, unknown ones ignored
        limit: int = Field(50, ge=1, le=1000)

    @route("/campaigns/<int:campaign_id>/waves", "POST", role=Role.marketer, summary="Send a wave",
           body=WaveIn, query=PageQuery, tag="campaigns")
    def send_wave(campaign_id: int, body: WaveIn, query: PageQuery) -> Response: ...

The view receives the validated models as the keyword arguments `body` and `query`; bad input never
reaches it: a 400 `{"error", "where", "details"}` names the field. `<int:...>` path parameters above
the database's bigint range answer 404; a `<path:...>` one holding a NUL byte answers 400.
The models' JSON Schemas become the operation's request body and parameters, their `$defs` the
document's components. A JSON-Schema dict for `body` (or a name -> description dict for `query`) is
still accepted during the move to models: documented only, not validated; the view reads the request
itself. `tests/app/test_api_schema.py` lists the routes still declared that way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, request
from pydantic import BaseModel

from app.api.schema import BIGINT_MAX, has_nul, parse_body, parse_query
from app.auth import require_role
from campaigns.errors import InputError, NotFound
from models import Role

F = TypeVar("F", bound=Callable[..., Any])

api = Blueprint("api", __name__, url_prefix="/api/v1")
OPERATIONS: dict[str, dict[str, Any]] = {}  # "/contacts/{id}" -> {"get": {...}}
COMPONENTS: dict[str, Any] = {}  # the models' $defs
LEGACY_ROUTES: list[str] = []  # "POST /rule" still declared with JSON-Schema dicts
_FLASK_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_REF = "#/components/schemas/{model}"


def openapi_path(rule: str) -> str:
    return _FLASK_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with its nested models moved to the document's components."""
    schema = model.model_json_schema(ref_template=_REF)
    COMPONENTS.update(schema.pop("$defs", {}))
    return schema


def _path_params(rule: str) -> list[dict[str, Any]]:
    params = []
    for m in _FLASK_PARAM.finditer(rule):
        schema: dict[str, Any] = {"type": "string"}
        if m.group(1) == "int":
            schema = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
        params.append({"name": m.group(2), "in": "path", "required": True, "schema": schema})
    return params


def _query_params(query: type[BaseModel] | dict[str, str] | None) -> list[dict[str, Any]]:
    if query is None:
        return []
    if not _is_model(query):
        return [
            {"name": n, "in": "query", "required": False, "description": t, "schema": {"type": "string"}}
            for n, t in query.items()  # type: ignore[union-attr]
        ]
    schema = model_schema(query)  # type: ignore[arg-type]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", [])):
            param["explode"] = True
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _validating(view: F, body: Any, query: Any) -> F:
    """Checks path ids, then parses the body and query models into the view's keyword arguments."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        for name, value in kwargs.items():
            if isinstance(value, int) and value > BIGINT_MAX:
                raise NotFound(f"{name} {value} does not exist")
            if isinstance(value, str) and has_nul(value):
                raise InputError("must not contain NUL bytes", where=name)
        if _is_model(body):
            kwargs["body"] = parse_body(body, request.get_data(cache=True))
        if _is_model(query):
            kwargs["query"] = parse_query(query, request.args)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def route(
    rule: str,
    method: str,
    *,
    role: Role | None,
    summary: str,
    body: type[BaseModel] | dict[str, Any] | None = None,
    query: type[BaseModel] | dict[str, str] | None = None,
    response: type[BaseModel] | dict[str, Any] | dict[int, type[BaseModel]] | None = None,
    content: str = "application/json",
    tag: str = "",
    status: int | tuple[int, ...] = 200,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """`body` and `query`: pydantic models (validated, see the module docstring), or during the move
    a JSON Schema (body) and a name -> description mapping (query), documented only.
    `response` is a JSON Schema or a model: the body of the success answers, `status` their codes
    (204 has no body); or a status code -> model mapping when the codes answer different bodies. The error answers every route can give are added (`responses`); `errors`
    names 401 or 403 for a public route that authenticates otherwise (a provider's signature)."""

    def decorator(view: F) -> F:
        validated = _validating(view, body, query)
        guarded = require_role(role)(validated) if role is not None else validated
        api.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[method])
        if (body is not None and not _is_model(body)) or (query is not None and not _is_model(query)):
            LEGACY_ROUTES.append(f"{method} {rule}")
        response_schema = _response_schemas(response)
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": view.__name__,
            "tags": [tag] if tag else [],
            "description": f"Needs the `{role.value}` role." if role else "Public.",
            "parameters": _path_params(rule) + _query_params(query),
            "responses": responses(method, status, response_schema, content, role is not None, errors),
        }
        if body is not None:
            schema = model_schema(body) if _is_model(body) else body  # type: ignore[arg-type]
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        OPERATIONS.setdefault(openapi_path(rule), {})[method.lower()] = op
        return guarded

    return decorator


def _response_schemas(
    response: type[BaseModel] | dict[str, Any] | dict[int, type[BaseModel]] | None,
) -> dict[str, Any] | dict[int, dict[str, Any]] | None:
    """A model's JSON Schema; a status code -> model mapping becomes a code -> schema one."""
    if _is_model(response):
        return model_schema(response)  # type: ignore[arg-type]
    if isinstance(response, dict) and response and all(isinstance(k, int) for k in response):
        return {int(code): model_schema(model) for code, model in response.items()}
    return response  # type: ignore[return-value]


SUCCESS = {
    200: "OK",
    201: "Created",
    202: "Accepted: the work goes on in the background",
    204: "Done; no body",
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def responses(
    method: str,
    status: int | tuple[int, ...],
    body: dict[str, Any] | dict[int, dict[str, Any]] | None,
    content: str,
    authenticated: bool,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Every status code the operation answers, with its body: the success codes, then the errors
    any route may give (bad input, authentication and role, unknown ids, state conflicts for
    changes, request size limits, an outage of the database or Redis)."""
    out: dict[str, Any] = {}
    for code in (status,) if isinstance(status, int) else status:
        entry: dict[str, Any] = {"description": SUCCESS.get(code, "OK")}
        if code != 204:
            default = {"type": "object"} if content == "application/json" else {"type": "string"}
            schema = body.get(code) if body and all(isinstance(k, int) for k in body) else body  # type: ignore[call-overload]
            entry["content"] = {content: {"schema": schema or default}}
        out[str(code)] = entry
    out["400"] = {"description": "Bad input: says what and where", "content": _ERROR}
    if authenticated or 401 in errors:
        out["401"] = {"description": "No or bad credentials", "content": _ERROR}
    if authenticated or 403 in errors:
        out["403"] = {"description": "Role too low (or not allowed here)", "content": _ERROR}
    out["404"] = {"description": "Not found (or not configured here)", "content": _ERROR}
    if method.upper() != "GET":
        out["409"] = {"description": "Not possible in the current state", "content": _ERROR}
    if method.upper() in ("POST", "PUT", "PATCH"):
        out["413"] = {"description": "The body is larger than MAX_CONTENT_LENGTH", "content": _ERROR}
    out["414"] = {"description": "The request line is longer than the server takes"}
    out["503"] = {"description": "The database or Redis is unreachable now: retry later"}
    return out


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mailramp API", "version": version},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **COMPONENTS,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "where": {"type": "string", "description": "the field, e.g. schedule.kind"},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["error"],
                },
            },
        },
        "paths": OPERATIONS,
    }
