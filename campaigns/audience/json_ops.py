"""The two JSON operations segment rules need that SQLAlchemy does not make portable: "the attribute
holds a value of this JSON type" and "the attribute is an array containing this value".

Each compiles per dialect (SQLite `json_type`/`json_each`, PostgreSQL `jsonb_typeof`/`@>`), always to
a boolean that is never NULL. Keys and values travel as bound parameters; the SQL text depends only
on the class, so SQLAlchemy's statement cache stays correct.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from campaigns.errors import InputError

_SQLITE_TYPES = {
    "present": "NOT IN ('null')",
    "number": "IN ('integer', 'real')",
    "string": "= 'text'",
    "boolean": "IN ('true', 'false')",
}
_PG_TYPES = {
    "present": "<> 'null'",
    "number": "= 'number'",
    "string": "= 'string'",
    "boolean": "= 'boolean'",
}


def check_key(key: str, where: str = "") -> None:
    """Attribute names are free text, except the characters a SQLite JSON path cannot quote."""
    if not key or any(c in key for c in '"\\') or any(ord(c) < 32 for c in key):
        raise InputError(
            f"attribute name {key!r} must be non-empty, without quotes, backslashes or control characters",
            where=where,
        )


def _sqlite_path(key: str) -> str:
    return f'$."{key}"'


class _JsonTest(FunctionElement[bool]):
    """Arguments: the JSON column, the SQLite path, the PostgreSQL key."""

    type = sa.Boolean()
    inherit_cache = True
    kind = ""


class _JsonIsPresent(_JsonTest):
    name = "json_is_present"
    inherit_cache = True
    kind = "present"


class _JsonIsNumber(_JsonTest):
    name = "json_is_number"
    inherit_cache = True
    kind = "number"


class _JsonIsString(_JsonTest):
    name = "json_is_string"
    inherit_cache = True
    kind = "string"


class _JsonIsBoolean(_JsonTest):
    name = "json_is_boolean"
    inherit_cache = True
    kind = "boolean"


_KINDS: dict[str, type[_JsonTest]] = {
    c.kind: c for c in (_JsonIsPresent, _JsonIsNumber, _JsonIsString, _JsonIsBoolean)
}


def json_is(column: Any, key: str, kind: str) -> ColumnElement[bool]:
    """The attribute `key` exists and holds a JSON value of `kind` (present, number, string, boolean)."""
    check_key(key)
    return _KINDS[kind](column, sa.literal(_sqlite_path(key), sa.String), sa.literal(key, sa.String))


class _JsonArrayContains(FunctionElement[bool]):
    """Arguments: the JSON column, the SQLite path, the PostgreSQL key, the value, the value as a
    one-element JSON array (for PostgreSQL's `@>`)."""

    name = "json_array_contains"
    type = sa.Boolean()
    inherit_cache = True


def json_array_contains(column: Any, key: str, value: str | int | float) -> ColumnElement[bool]:
    check_key(key)
    return _JsonArrayContains(
        column,
        sa.literal(_sqlite_path(key), sa.String),
        sa.literal(key, sa.String),
        sa.literal(value),
        sa.literal(json.dumps([value]), sa.String),
    )


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(_JsonTest, "sqlite")
def _json_test_sqlite(element: _JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column, path, _key = _args(element, compiler, **kw)
    return f"coalesce(json_type({column}, {path}) {_SQLITE_TYPES[element.kind]}, 0)"


@compiles(_JsonTest, "postgresql")
def _json_test_postgresql(element: _JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column, _path, key = _args(element, compiler, **kw)
    return f"coalesce(jsonb_typeof({column} -> CAST({key} AS TEXT)) {_PG_TYPES[element.kind]}, false)"


@compiles(_JsonArrayContains, "sqlite")
def _contains_sqlite(element: _JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    column, path, _key, value, _array = _args(element, compiler, **kw)
    # json_each yields typed values without affinity: 3 never equals '3', so types match exactly.
    return (
        f"coalesce(json_type({column}, {path}) = 'array' AND EXISTS "
        f"(SELECT 1 FROM json_each({column}, {path}) AS je WHERE je.value = {value}), 0)"
    )


@compiles(_JsonArrayContains, "postgresql")
def _contains_postgresql(element: _JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    column, _path, key, _value, array = _args(element, compiler, **kw)
    item = f"{column} -> CAST({key} AS TEXT)"
    return f"coalesce(jsonb_typeof({item}) = 'array' AND {item} @> CAST({array} AS JSONB), false)"
