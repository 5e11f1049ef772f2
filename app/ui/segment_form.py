"""The rule builder's form <-> a segment's rule tree (campaigns.audience.rules's JSON shape).

The builder edits the common shape: "all" or "any" of flat conditions. Anything deeper is edited as
JSON in the same form; the engine validates either way and names the rule that is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from campaigns.errors import InputError

# What a row can say, in the marketer's words, and the rule kind it becomes.
KINDS = (
    ("field", "Contact field or attribute"),
    ("purchased", "Bought in category (last N days)"),
    ("no_purchase_since", "No purchase in the last N days"),
    ("purchase_count", "Number of orders (last N days)"),
    ("total_spend", "Total spend (last N days)"),
)
OPS = (
    ("eq", "is"),
    ("ne", "is not"),
    ("in", "is one of"),
    ("not_in", "is none of"),
    ("contains", "contains"),
    ("gt", ">"),
    ("ge", "≥"),
    ("lt", "<"),
    ("le", "≤"),
    ("exists", "is set"),
)
FIELDS = ("email", "name", "country", "timezone", "status", "consent", "created_at")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass
class Row:
    kind: str = "field"
    field: str = ""
    op: str = "eq"
    value: str = ""
    days: str = ""


def _typed(text: str) -> Any:
    """A typed value: the type picks how the engine compares (numbers with numbers, text with text)."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _days(row: Row, where: str) -> int | None:
    if not row.days.strip():
        return None
    try:
        days = int(row.days)
    except ValueError as exc:
        raise InputError(f"days must be a whole number, not {row.days!r}", where=where) from exc
    return days


def row_to_rule(row: Row, where: str) -> dict[str, Any]:
    if row.kind == "field":
        if not row.field.strip():
            raise InputError("choose a field", where=where)
        if row.op in ("in", "not_in"):
            value: Any = [_typed(v) for v in row.value.split(",") if v.strip()]
        elif row.op == "exists":
            value = row.value.strip().lower() not in ("false", "no", "0")
        else:
            value = _typed(row.value)
        return {"field": row.field.strip(), "op": row.op, "value": value}
    days = _days(row, where)
    if row.kind == "purchased":
        spec: dict[str, Any] = {}
        categories = [c.strip() for c in row.value.split(",") if c.strip()]
        if categories:
            spec["category"] = categories if len(categories) > 1 else categories[0]
        if days is not None:
            spec["within_days"] = days
        return {"purchased": spec}
    if row.kind == "no_purchase_since":
        if days is None:
            raise InputError("say how many days", where=where)
        return {"no_purchase_since": {"days": days}}
    if row.kind in ("purchase_count", "total_spend"):
        measure: dict[str, Any] = {"op": row.op, "value": _typed(row.value)}
        if days is not None:
            measure["within_days"] = days
        return {row.kind: measure}
    raise InputError(f"unknown condition {row.kind!r}", where=where)


def rows_from_form(form: MultiDict[str, str]) -> list[Row]:
    indices = sorted({int(k.split("-", 1)[1]) for k in form if k.startswith("kind-") and k[5:].isdigit()})
    return [
        Row(
            kind=form.get(f"kind-{i}", "field"),
            field=form.get(f"field-{i}", ""),
            op=form.get(f"op-{i}", "eq"),
            value=form.get(f"value-{i}", ""),
            days=form.get(f"days-{i}", ""),
        )
        for i in indices
    ]


def rules_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The JSON box wins when it is filled in; otherwise the rows, combined with all/any."""
    raw = form.get("rules_json", "").strip()
    if raw:
        try:
            rules = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", where=f"rules (line {exc.lineno})") from exc
        if not isinstance(rules, dict):
            raise InputError("the rules must be a JSON object", where="rules")
        return rules
    combine = "any" if form.get("match") == "any" else "all"
    rows = [r for r in rows_from_form(form) if r.kind != "field" or r.field.strip()]
    return {combine: [row_to_rule(row, f"condition {n}") for n, row in enumerate(rows, start=1)]}


def _days_of(spec: dict[str, Any]) -> str:
    return str(spec.get("within_days", spec.get("days", "")))


def rule_to_row(rule: dict[str, Any]) -> Row | None:
    """A builder row for a flat rule, or None when it needs the JSON editor."""
    if "field" in rule:
        value = rule.get("value", "")
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict):
            return None
        else:
            text = str(value)
        return Row("field", str(rule["field"]), str(rule.get("op", "eq")), text)
    if set(rule) == {"purchased"} and set(rule["purchased"]) <= {"category", "within_days"}:
        category = rule["purchased"].get("category", "")
        text = ", ".join(category) if isinstance(category, list) else str(category)
        return Row("purchased", value=text, days=_days_of(rule["purchased"]))
    if set(rule) == {"no_purchase_since"} and set(rule["no_purchase_since"]) == {"days"}:
        return Row("no_purchase_since", days=_days_of(rule["no_purchase_since"]))
    for kind in ("purchase_count", "total_spend"):
        if set(rule) == {kind} and set(rule[kind]) <= {"op", "value", "within_days"}:
            spec = rule[kind]
            return Row(
                kind, op=str(spec.get("op", "ge")), value=str(spec.get("value", "")), days=_days_of(spec)
            )
    return None


def builder_state(rules: dict[str, Any] | None) -> tuple[str, list[Row], str]:
    """(match, rows, json) for the form: rows when the builder can show the rules, else JSON."""
    rules = rules or {"all": []}
    single = rule_to_row(rules) if not set(rules) & {"all", "any", "not"} else None
    if single is not None:  # one condition on its own reads as "all of: it"
        return "all", [single], ""
    for combine in ("all", "any"):
        if set(rules) == {combine} and isinstance(rules[combine], list):
            rows = [rule_to_row(r) if isinstance(r, dict) else None for r in rules[combine]]
            if all(row is not None for row in rows):
                return combine, [r for r in rows if r is not None], ""
    return "all", [], json.dumps(rules, indent=2)
