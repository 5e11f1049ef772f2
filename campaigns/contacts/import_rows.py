"""Reading one contact CSV row: the validation of `contact_import`, done once per row with the
header's layout worked out once per file.

A `RowParser` is made from the file's (normalized, aliased) columns. It parses a row's cells into a
`ContactRow` or reports each bad field with its line, in the order email, name, country, timezone,
consent, status, external_id, confirmed. Values that repeat across rows (countries, time zones,
consent and status words, attribute cells) are validated once and cached, so the common row costs
an email check, a name clean-up and a few dict lookups. No database here: both write paths (the
portable one and PostgreSQL's COPY) take the same `ContactRow`s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

from campaigns.contacts.records import (
    TEXT_LIMITS,
    clean_text,
    normalize_email,
    parse_consent,
    parse_status,
    parse_timezone,
    typed_value,
)
from campaigns.errors import InputError

EVIDENCE = ("consent_at", "consent_source", "consent_ip", "consent_wording", "confirmed")
KNOWN = (
    "email",
    "name",
    "first_name",
    "last_name",
    "country",
    "timezone",
    "consent",
    "status",
    "external_id",
    *EVIDENCE,
)
CACHE_LIMIT = 100_000  # distinct values kept per cache; past it the cache starts again
_NAME_LIMIT = TEXT_LIMITS["name"]
_EXTERNAL_LIMIT = TEXT_LIMITS["external_id"]
_BLANK = object()

Problem = tuple[int, str, str]  # (line, field, message), as ImportReport.error takes them
Checked = tuple[Any, str | None]  # (value, None) or (None, what is wrong with it)


class ContactRow(NamedTuple):
    """A valid row. None means the file leaves the field to the contact (or the default)."""

    number: int
    email: str
    name: str
    country: str
    timezone: str | None
    consent: bool | None
    status: str | None
    external_id: str | None
    attributes: tuple[tuple[int, str], ...]  # (column index, raw cell) of the non-blank attribute cells
    evidence: dict[str, Any]


class RowParser:
    def __init__(self, columns: Sequence[str]) -> None:
        index = {name: i for i, name in enumerate(columns)}
        self.columns = list(columns)
        self._email = index["email"]
        self._name = index.get("name")
        self._first = index.get("first_name")
        self._last = index.get("last_name")
        self._country = index.get("country")
        self._external = index.get("external_id")
        # (field, cell index, parser, its cache, slot in ContactRow's timezone/consent/status)
        self._choices: list[tuple[str, int, Callable[[str], Any], dict[str, Checked], int]] = [
            (field, index[field], parse, {}, slot)
            for slot, (field, parse) in enumerate(
                (("timezone", parse_timezone), ("consent", parse_consent), ("status", parse_status))
            )
            if field in index
        ]
        self._evidence = [(key, index[key]) for key in EVIDENCE if key in index]
        self._confirmed = index.get("confirmed")
        self.attribute_columns = [i for i, name in enumerate(columns) if name not in KNOWN]
        self._countries: dict[str, Checked] = {}
        self._typed: dict[str, Any] = {}

    def parse(self, number: int, cells: Sequence[str], problems: list[Problem]) -> ContactRow | None:
        """The row's fields, or None after appending a problem for each bad field."""
        failed = len(problems)
        try:
            email = normalize_email(cells[self._email])
        except InputError as exc:
            email = ""
            problems.append((number, "email", exc.message))
        name = cells[self._name].strip() if self._name is not None else ""
        if not name and (self._first is not None or self._last is not None):
            first = cells[self._first].strip() if self._first is not None else ""
            last = cells[self._last].strip() if self._last is not None else ""
            name = f"{first} {last}".strip()
        name = " ".join(name.split())  # clean_text's normalization
        if len(name) > _NAME_LIMIT:
            problems.append((number, "name", f"name is longer than {_NAME_LIMIT} characters"))
        country = ""
        if self._country is not None:
            raw = cells[self._country]
            found = self._countries.get(raw)
            if found is None:
                found = _checked(_clean_country, raw)
                _remember(self._countries, raw, found)
            country, problem = found
            if problem is not None:
                problems.append((number, "country", problem))
        chosen: list[Any] = [None, None, None]
        for field, i, parse, cache, slot in self._choices:
            raw = cells[i]
            found = cache.get(raw)
            if found is None:
                stripped = raw.strip()
                found = _checked(parse, stripped) if stripped else (None, None)
                _remember(cache, raw, found)
            value, problem = found
            if problem is not None:
                problems.append((number, field, problem))
            chosen[slot] = value
        external = cells[self._external].strip() if self._external is not None else ""
        if external:
            if external.endswith(".0") and external[:-2].isdigit():
                external = external[:-2]  # spreadsheets turn 17850 into 17850.0
            if len(external) > _EXTERNAL_LIMIT:
                problems.append(
                    (number, "external_id", f"external_id is longer than {_EXTERNAL_LIMIT} characters")
                )
        evidence: dict[str, Any] = {}
        for key, i in self._evidence:
            value = cells[i].strip()
            if value:
                evidence[key] = value
        if "confirmed" in evidence:
            try:
                evidence["confirmed"] = parse_consent(evidence["confirmed"])
            except InputError:
                assert self._confirmed is not None
                raw = cells[self._confirmed]
                problems.append(
                    (number, "confirmed", f"confirmed must be yes/no, true/false or 1/0, not {raw!r}")
                )
        if len(problems) > failed:
            return None
        typed = self._typed
        attributes = []
        for i in self.attribute_columns:
            raw = cells[i]
            value = typed.get(raw)
            if value is None:
                value = _BLANK if not raw.strip() else _Typed(typed_value(raw))
                _remember(typed, raw, value)
            if value is not _BLANK:
                attributes.append((i, raw))
        return ContactRow(
            number,
            email,
            name,
            country,
            chosen[0],
            chosen[1],
            chosen[2],
            external or None,
            tuple(attributes),
            evidence,
        )

    def attributes(self, row: ContactRow) -> dict[str, Any]:
        """The row's attributes, typed (true/false, numbers, text)."""
        return {self.columns[i]: self._typed_value(raw) for i, raw in row.attributes}

    def _typed_value(self, raw: str) -> Any:
        found = self._typed.get(raw)
        if found is None:
            found = _Typed(typed_value(raw))
            _remember(self._typed, raw, found)
        assert isinstance(found, _Typed)
        return found.value


class JsonAttributes:
    """The attributes of parsed rows as JSON text ready for COPY (backslashes doubled), built from
    one cached fragment per (column, cell): the same text as `json.dumps(attributes)`."""

    def __init__(self, parser: RowParser) -> None:
        self._parser = parser
        self._keys = {i: json.dumps(name) for i, name in enumerate(parser.columns)}
        self._fragments: dict[tuple[int, str], str] = {}

    def copy_text(self, row: ContactRow) -> str:
        if not row.attributes:
            return "{}"
        fragments = self._fragments
        parts = []
        for cell in row.attributes:
            fragment = fragments.get(cell)
            if fragment is None:
                i, raw = cell
                text = f"{self._keys[i]}:{json.dumps(self._parser._typed_value(raw))}"
                fragment = text.replace("\\", "\\\\")
                _remember(fragments, cell, fragment)
            parts.append(fragment)
        return "{" + ",".join(parts) + "}"


class _Typed:
    """A cached attribute value (None would not tell a cached value from a miss)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_clean_country = partial(clean_text, "country")


def _checked(parse: Callable[[str], Any], raw: str) -> Checked:
    try:
        return parse(raw), None
    except InputError as exc:
        return None, exc.message


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
