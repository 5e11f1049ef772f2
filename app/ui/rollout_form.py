"""Rollout settings as a form (no JSON to type): the stage plan with its gates, targeting, the primary
metric, guardrails and caps, the decision policy, maturation windows, freeze windows (one-off and
recurring) and report segments.

`form_values(rollout)` turns stored settings into what the form shows; `settings_from_form(form,
rollout)` turns a posted form back into engine settings, collecting every error under the name of
the field it belongs to; `field_of(where, form)` maps an engine error's ``where`` (for example
``stages[2].gates.min_events``) to that field, so the engine's own validation lands at the field too.

Rows (stages, freeze windows) carry a key of their own (``stage_key``, ``freeze_key``): their fields
are named ``stage-<key>-<field>`` and their order is the order the browser sends the keys in, so
adding, removing and reordering rows needs no renumbering.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from campaigns.decisions import policy as policy_module
from campaigns.rollout.stages import STAGE_KINDS

RATE_GUARDRAILS = policy_module.RATE_GUARDRAILS
LATENCY = policy_module.LATENCY_GUARDRAIL
POLICY_FIELDS = {  # shown when the engine's Policy knows them: label, hint
    "alpha": ("Error rate (alpha)", "Two-sided, valid under continuous monitoring; 0.05 is usual."),
    "advance_when": ("Advance when", ""),
    "min_samples_per_arm": ("Fewest recipients per arm", "Below this the evaluator only holds."),
    "stale_after_hours": ("Pause when no event for (hours)", "Tracking or ingest is broken."),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STAGE_FIELDS = {
    "name": "name",
    "kind": "kind",
    "exposure_bp": "exposure",
    "gates.min_recipients_per_arm": "min_recipients",
    "gates.min_events": "min_events",
    "gates.min_duration_hours": "min_hours",
    "unprotect_segments": "unprotect",
}
_KEY = re.compile(r"^[A-Za-z0-9_]{1,20}$")


def policy_fields() -> list[str]:
    known = set(policy_module.Policy.__dataclass_fields__)
    return [name for name in POLICY_FIELDS if name in known]


def maturation_defaults() -> dict[str, float]:
    """Default maturation window per event, if the engine's policy has maturation windows."""
    if "maturation_hours" not in policy_module.Policy.__dataclass_fields__:
        return {}
    return dict(getattr(policy_module, "MATURATION_HOURS", {}) or {})


@dataclass
class Parsed:
    settings: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


# -- posted form -> settings ---------------------------------------------------------------------


def row_keys(form: MultiDict[str, str], name: str) -> list[str]:
    return [k for k in form.getlist(name) if _KEY.match(k)]


def _number(
    form: MultiDict[str, str], name: str, errors: dict[str, str], low: float, high: float
) -> float | None:
    raw = form.get(name, "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a number"
        return None
    if not low <= value <= high:
        errors[name] = f"must be between {low:g} and {high:g}"
        return None
    return value


def _ids(form: MultiDict[str, str], name: str, errors: dict[str, str]) -> list[int]:
    out = []
    for raw in form.getlist(name):
        for part in re.split(r"[\s,;]+", raw.strip()):
            if not part:
                continue
            if not part.isdigit():
                errors[name] = f"{part!r} is not an id (whole numbers, separated by commas)"
                return []
            out.append(int(part))
    return sorted(set(out))


def _stages(form: MultiDict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    plan = []
    for key in row_keys(form, "stage_key"):
        p = f"stage-{key}-"
        kind = form.get(p + "kind", "percent")
        if kind not in STAGE_KINDS:
            errors[p + "kind"] = f"must be one of {', '.join(STAGE_KINDS)}"
        exposure = _number(form, p + "exposure", errors, 0, 100) or 0.0
        gates: dict[str, Any] = {
            "min_recipients_per_arm": int(_number(form, p + "min_recipients", errors, 0, 1e9) or 0),
            "min_events": int(_number(form, p + "min_events", errors, 0, 1e9) or 0),
            "min_duration_hours": _number(form, p + "min_hours", errors, 0, 24 * 365) or 0,
        }
        extra = form.get(p + "extra", "").strip()
        if extra:
            try:
                gates.update(
                    {k: v for k, v in json.loads(extra).items() if k in ("primary_metric", "guardrails")}
                )
            except (ValueError, AttributeError):
                errors[p + "name"] = "this stage's per-stage metric settings are not valid JSON"
        plan.append(
            {
                "name": form.get(p + "name", "").strip(),
                "kind": kind,
                "exposure_bp": round(exposure * 100),
                "gates": gates,
                "unprotect_segments": _ids(form, p + "unprotect", errors),
            }
        )
    if not plan:
        errors["stages"] = "a plan needs at least one stage"
    return plan


def stages_from_form(form: MultiDict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    """The stage rows as a plan; every problem goes into `errors` by field, all at once."""
    return _stages(form, errors)


def _targeting(form: MultiDict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    targeting: dict[str, Any] = {
        key: _ids(form, key, errors) for key in ("include_segments", "exclude_segments", "protected_segments")
    }
    targeting["allow_list"] = _ids(form, "allow_list", errors)
    beta_segment = form.get("beta_segment", "").strip()
    if beta_segment:
        if beta_segment.isdigit():
            targeting["beta_segment"] = int(beta_segment)
        else:
            errors["beta_segment"] = "choose a segment"
    attribute = form.get("beta_attribute", "").strip()
    if attribute:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$", attribute):
            errors["beta_attribute"] = "an attribute name: letters, digits, _ . -"
        targeting["beta"] = {"attribute": attribute, "op": "eq", "value": True}
    try:
        rules = json.loads(form.get("rules", "") or "[]")
    except ValueError:
        rules, errors["rules"] = [], "not valid JSON"
    if rules:
        targeting["rules"] = rules
    return targeting


def _guardrails(form: MultiDict[str, str], stored: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    guardrails = dict(stored)
    for name in (*RATE_GUARDRAILS, LATENCY):
        p = f"guard-{name}-"
        if form.get(p + "enabled") != "on":
            guardrails[name] = {"enabled": False}
            continue
        high = 1e7 if name == LATENCY else 100
        cap = _number(form, p + "cap", errors, 0, high)
        if cap is None:
            guardrails[name] = {}
        else:
            guardrails[name] = {"cap": cap if name == LATENCY else cap / 100}
    policy = dict(stored.get("policy") or {})
    for name in policy_fields():
        key = f"policy-{name}"
        if name == "advance_when":
            value = form.get(key, "")
            if value and value not in policy_module.ADVANCE_WHEN:
                errors[key] = f"must be one of {', '.join(policy_module.ADVANCE_WHEN)}"
            elif value:
                policy[name] = value
            continue
        number = _number(form, key, errors, 0, 1e9)
        if number is not None:
            policy[name] = int(number) if name == "min_samples_per_arm" else number
    maturation = {}
    for event in maturation_defaults():
        hours = _number(form, f"mature-{event}", errors, 0, 24 * 90)
        if hours is not None:
            maturation[event] = hours
    if maturation:
        policy["maturation_hours"] = maturation
    guardrails["policy"] = policy
    return guardrails


def _freeze(form: MultiDict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    windows: list[dict[str, Any]] = []
    for key in row_keys(form, "freeze_key"):
        p = f"freeze-{key}-"
        repeat = form.get(p + "repeat", "once")
        why = form.get(p + "why", "").strip()
        if repeat == "once":
            start, end = form.get(p + "start", "").strip(), form.get(p + "end", "").strip()
            for name, value in (("start", start), ("end", end)):
                if not value:
                    errors[p + name] = "a date and time (UTC) is needed"
            windows.append({"start": start, "end": end, "why": why})
            continue
        window: dict[str, Any] = {
            "repeat": repeat,
            "start_time": form.get(p + "start_time", "").strip() or "00:00",
            "hours": _number(form, p + "hours", errors, 0, 24 * 7),
            "timezone": form.get(p + "timezone", "").strip() or "UTC",
            "why": why,
        }
        if window["hours"] is None and p + "hours" not in errors:
            errors[p + "hours"] = "how many hours the window lasts"
        if repeat == "weekly":
            day = form.get(p + "weekday", "")
            window["weekday"] = int(day) if day.isdigit() else None
        windows.append(window)
    return windows


def basic_settings(form: MultiDict[str, str]) -> Parsed:
    """Name, series, primary metric, holdout and the four-eyes settings (both forms have them)."""
    parsed = Parsed()
    errors, settings = parsed.errors, parsed.settings
    for key in ("name", "series", "primary_metric", "decision_mode", "plan"):
        if key in form:
            settings[key] = form[key].strip()
    if "holdout_percent" in form:
        holdout = _number(form, "holdout_percent", errors, 0, 50)
        if holdout is not None:
            settings["holdout_bp"] = round(holdout * 100)
    if "approval_from_percent" in form:
        threshold = _number(form, "approval_from_percent", errors, 0, 100)
        settings["approval_from_bp"] = None if threshold is None else round(threshold * 100)
    return parsed


def settings_from_form(form: MultiDict[str, str], rollout: Any | None) -> Parsed:
    """Engine settings from the posted form; `errors` maps field names to messages."""
    parsed = basic_settings(form)
    errors, settings = parsed.errors, parsed.settings
    settings["stages"] = _stages(form, errors)
    settings["targeting"] = _targeting(form, errors)
    stored = dict(rollout.guardrails or {}) if rollout is not None else {}
    settings["guardrails"] = _guardrails(form, stored, errors)
    settings["freeze_windows"] = _freeze(form, errors)
    report = _ids(form, "report_segments", errors)
    if rollout is not None or report:
        settings["report_segments"] = report
    if not errors:
        try:
            policy_module.parse_config(settings.get("primary_metric"), settings["guardrails"])
        except Exception as exc:  # InputError: put it at its field
            where = getattr(exc, "where", "") or "guardrails"
            errors[field_of(where, form)] = getattr(exc, "message", str(exc))
    return parsed


# -- engine error -> field ------------------------------------------------------------------------


def field_of(where: str, form: MultiDict[str, str]) -> str:
    """The form field an engine error's `where` points at ("" when it names none)."""
    simple = {"holdout_bp": "holdout_percent", "approval_from_bp": "approval_from_percent"}
    if where in simple:
        return simple[where]
    match = re.match(r"^(stages|freeze_windows)\[(\d+)\]\.?(.*)$", where)
    if match:
        rows, index, rest = match.group(1), int(match.group(2)), match.group(3)
        keys = row_keys(form, "stage_key" if rows == "stages" else "freeze_key")
        if index >= len(keys):
            return rows
        if rows == "stages":
            name = next((v for k, v in _STAGE_FIELDS.items() if rest.startswith(k)), "name")
            return f"stage-{keys[index]}-{name}"
        return f"freeze-{keys[index]}-{(rest.split('.')[0] or 'start')}"
    if where.startswith("targeting."):
        name = where.split(".")[1].split("[")[0]
        return "beta_attribute" if name == "beta" else name
    if where.startswith("guardrails.policy.maturation_hours."):
        return "mature-" + where.rsplit(".", 1)[1]
    if where.startswith("guardrails.policy."):
        return "policy-" + where.split(".")[2]
    if where.startswith("guardrails."):
        return f"guard-{where.split('.')[1]}-cap"
    return where.split(".")[0].split("[")[0]
