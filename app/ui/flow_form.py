"""The flow editor as a form (no JSON to type, no drag-and-drop): the trigger, then the steps as a
numbered list of rows, then exit conditions and the re-entry rule.

`rows_from_definition(d)` turns a stored definition into rows; `rows_from_form(form)` reads posted
rows back (raw strings, as typed) and `apply_op` adds, removes or moves one (the form's buttons post
`op=add:wait`, `op=up:<key>`...: the page is redrawn, nothing is saved). `definition_from_form` is
the dict the SAME `FlowDefinition` schema as the API validates; `field_errors` maps the schema's
errors (`steps.1.wait.hours`) and the engine's (`definition.steps.1.template_id`) to form fields
(`step-<key>-hours`), so every error shows at its field.

Rows carry a key of their own (`step_key`): their fields are `step-<key>-<field>`, their order is the
order the browser sends the keys in.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from app.api.schema import input_error
from campaigns.flows.definition import FlowDefinition

STEP_TYPES = ("send", "wait", "branch", "exit")
STEP_FIELDS = {
    "send": ("template_id", "from_email", "from_name", "ai_content"),
    "wait": ("days", "hours", "minutes", "until_local_time"),
    "branch": ("condition", "event", "segment_rules", "then", "otherwise"),
    "exit": ("reason",),
}
CONDITIONS = ("opened", "clicked", "purchased", "event", "segment")
TRIGGER_FIELDS = ("name", "segment_id", "days", "attribute", "offset_days", "yearly")
INTS = {"template_id", "days", "hours", "minutes", "segment_id", "offset_days"}
_KEY = re.compile(r"^[0-9]{1,4}$")

Row = dict[str, str]


# -- stored definition -> rows ------------------------------------------------------------------


def _row(key: int, step: dict[str, Any]) -> Row:
    row = {"key": str(key), "type": str(step.get("type", "")), "id": str(step.get("id", ""))}
    for name in STEP_FIELDS.get(row["type"], ()):
        value = step.get(name)
        row[name] = "" if value in (None, False, 0) and value is not True else _text(value)
    if row["type"] == "branch":
        condition = step.get("condition") or {}
        if "segment_rules" in condition:
            row["condition"], row["segment_rules"] = "segment", json.dumps(condition["segment_rules"])
        else:
            event = str(condition.get("event", "opened"))
            row["condition"] = event if event in CONDITIONS[:3] else "event"
            row["event"] = "" if event in CONDITIONS[:3] else event
    return row


def rows_from_definition(definition: dict[str, Any]) -> dict[str, Any]:
    trigger = definition.get("trigger", {})
    re_entry = definition.get("re_entry") or {}
    return {
        "trigger_kind": str(trigger.get("kind", "contact_confirmed")),
        "trigger": {k: _text(trigger.get(k)) for k in TRIGGER_FIELDS},
        "steps": [_row(i, s) for i, s in enumerate(definition.get("steps", []))],
        "exit_events": ", ".join(str(c.get("event", "")) for c in definition.get("exit_conditions", [])),
        "re_entry_rule": str(re_entry.get("rule", "never")),
        "re_entry_days": _text(re_entry.get("days")),
    }


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return "on" if value is True else str(value)


# -- posted form -> rows, and the editing buttons -----------------------------------------------


def rows_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    steps = []
    for key in [k for k in form.getlist("step_key") if _KEY.match(k)]:
        p = f"step-{key}-"
        kind = form.get(p + "type", "")
        if kind not in STEP_TYPES:
            continue
        row = {"key": key, "type": kind, "id": form.get(p + "id", "").strip()}
        for name in STEP_FIELDS[kind]:
            row[name] = form.get(p + name, "").strip()
        steps.append(row)
    return {
        "trigger_kind": form.get("trigger_kind", "contact_confirmed"),
        "trigger": {k: form.get("trigger_" + k, "").strip() for k in TRIGGER_FIELDS},
        "steps": steps,
        "exit_events": form.get("exit_events", "").strip(),
        "re_entry_rule": form.get("re_entry_rule", "never"),
        "re_entry_days": form.get("re_entry_days", "").strip(),
    }


def _new_row(rows: list[Row], kind: str) -> Row:
    key = max((int(r["key"]) for r in rows), default=-1) + 1
    taken = {r["id"] for r in rows}
    number = 1
    while f"{kind}-{number}" in taken:
        number += 1
    row = {"key": str(key), "type": kind, "id": f"{kind}-{number}"}
    row.update({name: "" for name in STEP_FIELDS[kind]})
    if kind == "wait":
        row["days"] = "1"
    if kind == "branch":
        row["condition"] = "opened"
    return row


def apply_op(state: dict[str, Any], op: str) -> str:
    """Apply an editing button to the rows; returns the key of the row to focus ("" if none)."""
    action, _, arg = op.partition(":")
    rows: list[Row] = state["steps"]
    if action == "add" and arg in STEP_TYPES and len(rows) < 50:
        rows.append(_new_row(rows, arg))
        return rows[-1]["key"]
    index = next((i for i, r in enumerate(rows) if r["key"] == arg), None)
    if index is None:
        return ""
    if action == "remove":
        rows.pop(index)
        return ""
    target = index - 1 if action == "up" else index + 1 if action == "down" else index
    if 0 <= target < len(rows):
        rows[index], rows[target] = rows[target], rows[index]
    return arg


# -- rows -> the definition the schema validates -----------------------------------------------


def _value(name: str, raw: str) -> Any:
    """A whole number where the schema wants one; otherwise the text, for the schema to refuse."""
    if name in INTS and re.fullmatch(r"-?[0-9]{1,12}", raw):
        return int(raw)
    return raw


def _step(row: Row) -> dict[str, Any]:
    step: dict[str, Any] = {"id": row["id"], "type": row["type"]}
    if row["type"] == "send":
        step["ai_content"] = row.get("ai_content") == "on"
        for name in ("template_id", "from_email", "from_name"):
            step[name] = _value(name, row.get(name, ""))
    elif row["type"] == "wait":
        for name in ("days", "hours", "minutes", "until_local_time"):
            if row.get(name):
                step[name] = _value(name, row[name])
    elif row["type"] == "branch":
        condition = row.get("condition", "opened")
        if condition == "segment":
            try:
                step["condition"] = {"segment_rules": json.loads(row.get("segment_rules") or "{}")}
            except json.JSONDecodeError:
                step["condition"] = {"segment_rules": {}}  # validate() names the JSON error
        else:
            step["condition"] = {"event": row.get("event", "") if condition == "event" else condition}
        step["then"] = row.get("then", "")
        step["otherwise"] = row.get("otherwise") or None
    elif row.get("reason"):
        step["reason"] = row["reason"]
    return step


def definition_from_form(state: dict[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = {"kind": state["trigger_kind"]}
    wanted = {
        "event": ("name",),
        "segment_joined": ("segment_id",),
        "inactivity": ("days",),
        "date_attribute": ("attribute", "offset_days", "yearly"),
    }.get(state["trigger_kind"], ())
    for name in wanted:
        raw = state["trigger"].get(name, "")
        if name == "yearly":
            trigger[name] = raw == "on"
        elif raw or name != "offset_days":
            trigger[name] = _value(name, raw)
    re_entry: dict[str, Any] = {"rule": state["re_entry_rule"]}
    if state["re_entry_days"] and state["re_entry_rule"] == "after_days":
        re_entry["days"] = _value("days", state["re_entry_days"])
    events = [e.strip() for e in re.split(r"[,\s]+", state["exit_events"]) if e.strip()]
    return {
        "trigger": trigger,
        "steps": [_step(r) for r in state["steps"]],
        "exit_conditions": [{"event": e} for e in events],
        "re_entry": re_entry,
    }


def validate(state: dict[str, Any]) -> tuple[FlowDefinition | None, dict[str, str]]:
    """The definition through the API's schema; on failure every problem under its form field."""
    errors: dict[str, str] = {}
    for row in state["steps"]:
        if row["type"] == "branch" and row.get("condition") == "segment":
            try:
                json.loads(row.get("segment_rules") or "{}")
            except json.JSONDecodeError as exc:
                errors[f"step-{row['key']}-segment_rules"] = f"not valid JSON: {exc.msg} (line {exc.lineno})"
    try:
        definition = FlowDefinition.model_validate(definition_from_form(state))
    except ValidationError as exc:
        problems = [(str(p["where"]), str(p["error"])) for p in input_error(exc).details or []]
        return None, {**field_errors(state, [p for p in problems if _chosen(state, p[0])]), **errors}
    return (None, errors) if errors else (definition, {})


def _chosen(state: dict[str, Any], where: str) -> bool:
    """A branch's condition is one of two shapes: only the errors of the one the marketer chose."""
    found = re.match(r"^steps\.(\d+)\..*\.(EventCondition|SegmentCondition)\b", where)
    if not found or int(found.group(1)) >= len(state["steps"]):
        return True
    segment = state["steps"][int(found.group(1))].get("condition") == "segment"
    return segment == (found.group(2) == "SegmentCondition")


def field_errors(state: dict[str, Any], problems: list[tuple[str, str]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for where, message in problems:
        errors.setdefault(field_of(state, where, message), message)
    return errors


def field_of(state: dict[str, Any], where: str, message: str = "") -> str:
    """`steps.1.wait.hours` -> `step-<key>-hours`; a graph error names its field in the message."""
    where = where.removeprefix("definition.").removeprefix("definition")
    path = re.match(r"^(steps\.\d+\.[a-z_]+)", message)
    if path and where in ("", "body"):
        where = path.group(1)
    parts = where.split(".") if where else []
    if len(parts) >= 2 and parts[0] == "steps" and parts[1].isdigit():
        index = int(parts[1])
        rows = state["steps"]
        if index >= len(rows):
            return "steps"
        rest = [p for p in parts[2:] if p not in STEP_TYPES and not p[:1].isupper()]
        name = rest[0] if rest else ""
        if name in ("condition", "event", "segment_rules"):
            name = "segment_rules" if rows[index].get("condition") == "segment" else "condition"
            name = "event" if rows[index].get("condition") == "event" else name
        known = {"id", *STEP_FIELDS[rows[index]["type"]]}
        if name not in known:  # the step as a whole: a wait's duration, or its id
            name = "days" if rows[index]["type"] == "wait" else "id"
        return f"step-{rows[index]['key']}-{name}"
    if parts and parts[0] == "trigger":
        rest = [p for p in parts[1:] if p in TRIGGER_FIELDS]
        return "trigger_" + rest[0] if rest else "trigger_kind"
    if parts and parts[0] == "exit_conditions":
        return "exit_events"
    if parts and parts[0] == "re_entry":
        return (
            "re_entry_days" if state["re_entry_rule"] == "after_days" or "days" in parts else "re_entry_rule"
        )
    return "steps" if parts and parts[0] == "steps" else "name" if parts and parts[0] == "name" else "steps"
