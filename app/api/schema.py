"""The request models' building blocks (pydantic v2): one schema validates a request and writes its
OpenAPI entry (`app.api.spec.route`).

Bodies are validated from the raw JSON in strict mode (`true` is not an id, `"5"` is not a number),
query strings in lax mode (every query value arrives as text), except that a number must be written
plainly (`1000`, `-2`, `0.5`: not `1_000`, ` 5 `, `1e3`, `NaN` or `+5`). Every string, also inside nested
objects and lists, is refused when it holds a NUL byte (PostgreSQL cannot store one). Ids are bounded
to the database's bigint range.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from campaigns.errors import InputError, has_nul

BIGINT_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="why: written to the audit log")]


class _NoNul(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("must not contain NUL bytes")
        return value


class ApiModel(_NoNul):
    """A JSON request body: strict types, no unknown fields, finite numbers."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, str_max_length=1_000_000)


_PLAIN = {int: re.compile(r"-?[0-9]{1,100}"), float: re.compile(r"-?[0-9]{1,100}(\.[0-9]{1,100})?")}


def _number_type(annotation: Any) -> type | None:
    """int or float when the field holds a number (`int`, `float | None`, `Annotated[int, ...]`)."""
    for kind in (annotation, *get_args(annotation)):
        if kind in _PLAIN:
            return kind
        if get_origin(kind) is Annotated and get_args(kind)[0] in _PLAIN:
            return get_args(kind)[0]
    return None


class QueryModel(_NoNul):
    """Query parameters: text coerced to the declared types, numbers written plainly; unknown
    parameters are ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, str_max_length=10_000)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_type(field.annotation) if field is not None else None
        if kind is not None and isinstance(value, str) and not _PLAIN[kind].fullmatch(value):
            plain = "a whole number" if kind is int else "a number"
            raise ValueError(f"must be {plain} written with digits only (like 5 or -2), not {value[:40]!r}")
        return value


def where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    if error["type"] == "model_type" or (error["type"] == "dict_type" and not error["loc"]):
        return "the request body must be a JSON object"
    return str(error["msg"]).removeprefix("Value error, ")


def input_error(exc: ValidationError, prefix: str = "") -> InputError:
    """The first problem as `error`/`where`; all of them in `details`."""
    problems = [
        {"where": (prefix + "." if prefix and e["loc"] else prefix) + where(e["loc"]), "error": _message(e)}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0]
    return InputError(first["error"], where=first["where"], details=problems)


def parse_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise input_error(exc) from None


def _is_list(annotation: Any) -> bool:
    """list[X] or list[X] | None: a parameter that may repeat (?category=a&category=b)."""
    return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))


def parse_query(model: type[BaseModel], args: Any) -> BaseModel:
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in args:
            continue
        is_list = _is_list(info.annotation)
        value = [v for v in args.getlist(key) if v != ""] if is_list else args.get(key)
        if value not in ("", []):  # an empty parameter means the default
            values[key] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise input_error(exc) from None
