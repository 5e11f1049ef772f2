"""Segments -> SQL: a JSON rule tree over contact attributes and purchase behaviour.

A rule is one of

    {"all": [rule, ...]}          every rule holds ({"all": []} matches everyone)
    {"any": [rule, ...]}          at least one holds ({"any": []} matches no one)
    {"not": rule}
    {"field": F, "op": OP, "value": V}
        F: a contact column (email, name, country, timezone, consent, status, created_at)
           or a JSON attribute "attributes.<key>"
        OP: eq ne in not_in lt le gt ge contains exists
        V: typed as the comparison needs it: for attributes the type of V picks how the stored
           value is read (a number compares with numbers, text with text, true/false with booleans;
           a stored value of another type does not match). created_at takes an ISO date or
           {"days_ago": N}. `exists` takes true (default) or false.
    {"purchased": {"category": C | [C...], "sku": S | [S...], "within_days": N, "since": DATE,
                   "before": DATE}}
        at least one purchase matching every given condition
    {"no_purchase_since": {"days": N} | {"date": DATE}, "bought_before": false}
        no purchase at or after the cutoff; with "bought_before": true, only contacts who did buy
        before it (lapsed customers)
    {"purchase_count": {"op": OP, "value": N, "within_days": N, "since": DATE, "category": C}}
        orders: distinct invoice references (an interaction without one counts on its own)
    {"total_spend": {"op": OP, "value": V, "within_days": N, "since": DATE, "category": C}}
        purchases minus returns

Every compiled rule is a boolean that is never NULL, so `not` and `ne` mean what a marketer
expects: {"field": "attributes.plan", "op": "ne", "value": "gold"} includes contacts with no plan.
The SQL is the same on SQLite and PostgreSQL except JSON type checks and array containment, which
compile per dialect (see `campaigns.audience.json_ops`). Behaviour rules live in
`campaigns.audience.behaviour`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.audience.behaviour import COMPARE, ORDER_OPS, Rule, behaviour_rule, escape_like, moment, number
from campaigns.audience.json_ops import check_key, json_array_contains, json_is
from campaigns.errors import InputError, NotFound
from models import Contact, Segment, Suppression
from models.contacts import CONTACT_STATUSES

COMBINATORS = ("all", "any", "not")
BEHAVIOURS = ("purchased", "no_purchase_since", "purchase_count", "total_spend")
OPS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "contains", "exists")
TEXT_COLUMNS = ("email", "name", "country", "timezone", "status")
COLUMNS = (*TEXT_COLUMNS, "consent", "created_at")
ATTRIBUTE_PREFIX = "attributes."
MAX_DEPTH = 20
MAX_IN = 10_000

# ---------------------------------------------------------------------------------------------
# public API


def validate_rules(rules: Any) -> None:
    """Raise InputError naming the rule (as a path like `all[2].value`) and what is wrong with it."""
    _compile(rules, datetime.now(UTC), "rules", 0)


def segment_filter(rules: Any, now: datetime) -> ColumnElement[bool]:
    """A boolean over `Contact` (and correlated subqueries) that holds for the segment's members."""
    return _compile(rules, now, "rules", 0)


def segment_rules(session: Session, segment_id: int | None) -> Rule:
    if segment_id is None:
        return {"all": []}
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} does not exist")
    return segment.rules or {"all": []}


def sendable() -> ColumnElement[bool]:
    """Active, consenting, and not on the suppression list."""
    suppressed = sa.select(Suppression.id).where(Suppression.email == Contact.email).exists()
    return sa.and_(Contact.status == "active", Contact.consent.is_(True), ~suppressed)


def audience_select(session: Session, segment_id: int | None, now: datetime) -> sa.Select[int]:
    """Ids of the sendable contacts in the segment (everyone sendable when `segment_id` is None),
    in id order. Callers add their own conditions (already sent, ...) with `.where()`."""
    rules = segment_rules(session, segment_id)
    return sa.select(Contact.id).where(sendable(), segment_filter(rules, now)).order_by(Contact.id)


def count(session: Session, rules: Any, *, sendable_only: bool = False, now: datetime | None = None) -> int:
    """The live count of contacts matching `rules` (validated; InputError when they are wrong)."""
    condition = segment_filter(rules, now or datetime.now(UTC))
    if sendable_only:
        condition = sa.and_(sendable(), condition)
    return int(session.scalar(sa.select(sa.func.count()).select_from(Contact).where(condition)) or 0)


def members(
    session: Session, segment_id: int | None, contact_ids: Iterable[int], now: datetime | None = None
) -> set[int]:
    """Which of `contact_ids` are in the segment, in one query (rollout targeting, ~1,000 ids)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return set()
    rules = segment_rules(session, segment_id)
    query = sa.select(Contact.id).where(Contact.id.in_(ids), segment_filter(rules, now or datetime.now(UTC)))
    return set(session.scalars(query))


# ---------------------------------------------------------------------------------------------
# the compiler


def _compile(rule: Any, now: datetime, where: str, depth: int) -> ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise InputError(f"rules nest deeper than {MAX_DEPTH} levels", where=where)
    if not isinstance(rule, dict):
        raise InputError(f"a rule must be a JSON object, not {type(rule).__name__}", where=where)
    if "field" in rule:
        return _field_rule(rule, now, where)
    keys = [k for k in rule if k in COMBINATORS or k in BEHAVIOURS]
    if len(keys) != 1:
        raise InputError(
            "a rule needs exactly one of field, "
            + ", ".join(COMBINATORS + BEHAVIOURS)
            + f"; got {sorted(rule) or 'an empty object'}",
            where=where,
        )
    key = keys[0]
    body = rule[key]
    if key in ("all", "any"):
        extra = set(rule) - {key}
        if extra:
            raise InputError(f"unexpected keys beside {key!r}: {sorted(extra)}", where=where)
        if not isinstance(body, list):
            raise InputError(f"{key!r} takes a list of rules", where=f"{where}.{key}")
        parts = [_compile(r, now, f"{where}.{key}[{i}]", depth + 1) for i, r in enumerate(body)]
        if not parts:
            return sa.true() if key == "all" else sa.false()
        if len(parts) == 1:
            return parts[0]
        return sa.and_(*parts) if key == "all" else sa.or_(*parts)
    if key == "not":
        return sa.not_(_compile(body, now, f"{where}.not", depth + 1))
    return behaviour_rule(key, rule, now, f"{where}.{key}")


def _field_rule(rule: Rule, now: datetime, where: str) -> ColumnElement[bool]:
    extra = set(rule) - {"field", "op", "value"}
    if extra:
        raise InputError(f"unexpected keys in a field rule: {sorted(extra)}", where=where)
    field = rule["field"]
    op = rule.get("op", "eq")
    if op not in OPS:
        raise InputError(f"unknown op {op!r}; use one of {', '.join(OPS)}", where=f"{where}.op")
    if op != "exists" and "value" not in rule:
        raise InputError(f"op {op!r} needs a value", where=f"{where}.value")
    value = rule.get("value", True)
    if not isinstance(field, str):
        raise InputError("field must be text", where=f"{where}.field")
    if field.startswith(ATTRIBUTE_PREFIX):
        key = field[len(ATTRIBUTE_PREFIX) :]
        if len(key) > 100:
            raise InputError("an attribute name must be at most 100 characters", where=f"{where}.field")
        check_key(key, f"{where}.field")
        return _attribute_rule(key, op, value, f"{where}.value")
    if field not in COLUMNS:
        raise InputError(
            f"unknown field {field!r}; use one of {', '.join(COLUMNS)} or attributes.<name>",
            where=f"{where}.field",
        )
    if field == "consent":
        return _consent_rule(op, value, where)
    if field == "created_at":
        return _created_rule(op, value, now, where)
    return _text_column_rule(field, op, value, where)


def _values(op: str, value: Any, where: str) -> list[Any]:
    """The operand list of in/not_in, or the single operand of the others."""
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise InputError(f"op {op!r} takes a non-empty list", where=where)
        if len(value) > MAX_IN:
            raise InputError(f"op {op!r} takes at most {MAX_IN} values", where=where)
        return value
    return [value]


def _text_column_rule(field: str, op: str, value: Any, where: str) -> ColumnElement[bool]:
    column: sa.ColumnElement[str] = getattr(Contact, field)
    if op == "exists":
        if not isinstance(value, bool):
            raise InputError("exists takes true or false", where=f"{where}.value")
        present = column != ""
        return present if value else sa.not_(present)
    items = _values(op, value, f"{where}.value")
    for v in items:
        if not isinstance(v, str):
            raise InputError(f"{field} compares with text, not {v!r}", where=f"{where}.value")
        if field == "status" and op in ("eq", "ne", "in", "not_in") and v not in CONTACT_STATUSES:
            raise InputError(
                f"unknown status {v!r}; use one of {', '.join(CONTACT_STATUSES)}", where=f"{where}.value"
            )
    if field == "email":
        items = [v.strip().lower() for v in items]
    if op == "contains":
        return column.ilike(f"%{escape_like(items[0])}%", escape="\\")
    if op == "in":
        return column.in_(items)
    if op == "not_in":
        return column.not_in(items)
    return COMPARE[op](column, items[0])


def _consent_rule(op: str, value: Any, where: str) -> ColumnElement[bool]:
    if op not in ("eq", "ne", "exists") or not isinstance(value, bool):
        raise InputError("consent takes eq or ne with true or false", where=f"{where}.value")
    if op == "exists":
        return sa.true() if value else sa.false()
    return Contact.consent.is_(value if op == "eq" else not value)


def _created_rule(op: str, value: Any, now: datetime, where: str) -> ColumnElement[bool]:
    if op not in ORDER_OPS:
        raise InputError(f"created_at takes one of {', '.join(ORDER_OPS)}", where=f"{where}.op")
    if isinstance(value, dict) and set(value) == {"days_ago"}:
        at = now - timedelta(days=number(value["days_ago"], f"{where}.value.days_ago", minimum=0))
    else:
        at = moment(value, f"{where}.value")
    return COMPARE[op](Contact.created_at, at)


def _attribute_rule(key: str, op: str, value: Any, where: str) -> ColumnElement[bool]:
    element = Contact.attributes[key]
    if op == "exists":
        if not isinstance(value, bool):
            raise InputError("exists takes true or false", where=where)
        present = json_is(Contact.attributes, key, "present")
        return present if value else sa.not_(present)
    if op == "contains":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InputError("contains takes text or a number", where=where)
        found = json_array_contains(Contact.attributes, key, value)
        if isinstance(value, str):
            text = sa.and_(
                json_is(Contact.attributes, key, "string"),
                element.as_string().ilike(f"%{escape_like(value)}%", escape="\\"),
            )
            found = sa.or_(text, found)
        return found
    items = _values(op, value, where)
    negate = op in ("ne", "not_in")
    if op in ("in", "not_in", "ne"):
        op = "eq"
    parts: list[ColumnElement[bool]] = []
    for kind, group in _by_type(items, where).items():
        if op not in ("eq",) and kind == "boolean":
            raise InputError(f"{op} does not apply to true/false", where=where)
        typed = json_is(Contact.attributes, key, kind)
        read = {
            "number": lambda: element.as_float(),
            "string": lambda: element.as_string(),
            "boolean": lambda: element.as_boolean(),
        }[kind]()
        guarded = sa.case((typed, read), else_=sa.null())
        if op == "eq":
            compare = guarded.in_(group) if len(group) > 1 else guarded == group[0]
        else:
            compare = COMPARE[op](guarded, group[0])
        parts.append(sa.and_(typed, compare))
    matched = parts[0] if len(parts) == 1 else sa.or_(*parts)
    return sa.not_(matched) if negate else matched


def _by_type(items: list[Any], where: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for v in items:
        if isinstance(v, bool):
            groups.setdefault("boolean", []).append(v)
        elif isinstance(v, int | float):
            groups.setdefault("number", []).append(float(v))
        elif isinstance(v, str):
            groups.setdefault("string", []).append(v)
        else:
            raise InputError(
                f"an attribute compares with text, a number or true/false, not {v!r}", where=where
            )
    return groups
