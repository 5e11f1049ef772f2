"""Bad input answers 400 with what was wrong and where; the engine raises `InputError` for it."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.api.schema import has_nul
from app.api.spec import api
from campaigns.errors import InputError, NotFound, StateError


def json_body() -> dict[str, Any]:
    """For routes still declared with JSON-Schema dicts: the body as a dict, NUL bytes refused."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object", where="body")
    for name, value in body.items():
        if has_nul(value) or has_nul(name):
            raise InputError("must not contain NUL bytes", where=str(name))
    return body


@api.errorhandler(InputError)
def _input_error(exc: InputError) -> tuple[Response, int]:
    details = exc.details if exc.details is not None else [{"where": exc.where, "error": exc.message}]
    return jsonify(error=exc.message, where=exc.where, details=details), 400


@api.errorhandler(StateError)
def _state_error(exc: StateError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 409


@api.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 404


@api.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return jsonify(error=exc.description or exc.name), exc.code or 500
