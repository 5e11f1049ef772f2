"""What the rollout settings form shows: stored settings as form values (`form_values`), or what was
posted, to show it again with its errors (`posted_values`). The other way is `app.ui.rollout_form`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from app.ui.rollout_form import LATENCY, RATE_GUARDRAILS, maturation_defaults, policy_fields, row_keys
from campaigns.decisions import policy as policy_module
from campaigns.rollout.stages import default_plan


def _num(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"


def form_values(rollout: Any | None, default_stages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`default_stages`: a new rollout's plan (the workspace's default plan)."""
    stages = list(rollout.stages) if rollout is not None else list(default_stages or default_plan())
    targeting = dict(rollout.targeting or {}) if rollout is not None else {}
    guardrails = dict(rollout.guardrails or {}) if rollout is not None else {}
    policy = dict(guardrails.get("policy") or {})
    beta = targeting.get("beta") or {}
    rails = {}
    for name in (*RATE_GUARDRAILS, LATENCY):
        raw = guardrails.get(name, {})
        enabled = not (raw is None or raw is False or (isinstance(raw, dict) and raw.get("enabled") is False))
        cap = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        if isinstance(raw, dict):
            cap = raw.get("cap")
        shown = cap if cap is None or name == LATENCY else cap * 100
        rails[name] = {"enabled": enabled, "cap": _num(shown)}
    defaults = policy_module.Policy()
    maturation = maturation_defaults()
    return {
        "stages": [_stage_row(str(i), s) for i, s in enumerate(stages)],
        "include_segments": list(targeting.get("include_segments") or []),
        "exclude_segments": list(targeting.get("exclude_segments") or []),
        "protected_segments": list(targeting.get("protected_segments") or []),
        "allow_list": ", ".join(str(i) for i in targeting.get("allow_list") or []),
        "beta_segment": targeting.get("beta_segment") or "",
        "beta_attribute": beta.get("attribute", "")
        if beta.get("op") == "eq" and beta.get("value") is True
        else "",
        "rules": json.dumps(targeting.get("rules") or []),
        "guardrails": rails,
        "policy": {k: policy.get(k, getattr(defaults, k)) for k in policy_fields()},
        "maturation": {e: (policy.get("maturation_hours") or {}).get(e, h) for e, h in maturation.items()},
        "freeze": [
            _freeze_row(str(i), w) for i, w in enumerate(rollout.freeze_windows or [] if rollout else [])
        ],
        "report_segments": list(rollout.report_segments or []) if rollout is not None else [],
    }


def stage_rows(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plan's stages as the form's rows."""
    return [_stage_row(str(i), s) for i, s in enumerate(stages)]


def _stage_row(key: str, stage: dict[str, Any]) -> dict[str, Any]:
    gates = stage.get("gates") or {}
    extra = {k: gates[k] for k in ("primary_metric", "guardrails") if gates.get(k) is not None}
    return {
        "key": key,
        "name": stage.get("name", ""),
        "kind": stage.get("kind", "percent"),
        "exposure": _num((stage.get("exposure_bp") or 0) / 100),
        "min_recipients": _num(gates.get("min_recipients_per_arm") or 0),
        "min_events": _num(gates.get("min_events") or 0),
        "min_hours": _num(gates.get("min_duration_hours") or 0),
        "unprotect": list(stage.get("unprotect_segments") or []),
        "extra": json.dumps(extra) if extra else "",
    }


def _local_input(iso: str | None) -> str:
    """An ISO date-time as a datetime-local value in UTC (the form says its fields are UTC)."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M")


def _freeze_row(key: str, window: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "repeat": window.get("repeat", "once"),
        "start": _local_input(window.get("start")),
        "end": _local_input(window.get("end")),
        "weekday": window.get("weekday", 4),
        "start_time": window.get("start_time", "18:00"),
        "hours": _num(window.get("hours")),
        "timezone": window.get("timezone", "UTC"),
        "why": window.get("why", ""),
    }


def posted_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """What the form showed when it was posted, to show it again with its errors."""

    def ints(name: str) -> list[int]:
        return [int(v) for raw in form.getlist(name) for v in re.split(r"[\s,;]+", raw) if v.isdigit()]

    rails = {
        name: {"enabled": form.get(f"guard-{name}-enabled") == "on", "cap": form.get(f"guard-{name}-cap", "")}
        for name in (*RATE_GUARDRAILS, LATENCY)
    }
    stage_fields = ("name", "kind", "exposure", "min_recipients", "min_events", "min_hours", "extra")
    freeze_fields = ("repeat", "start", "end", "weekday", "start_time", "hours", "timezone", "why")
    return {
        "stages": [
            {
                "key": k,
                **{f: form.get(f"stage-{k}-{f}", "") for f in stage_fields},
                "unprotect": ints(f"stage-{k}-unprotect"),
            }
            for k in row_keys(form, "stage_key")
        ],
        **{key: ints(key) for key in ("include_segments", "exclude_segments", "protected_segments")},
        "allow_list": form.get("allow_list", ""),
        "beta_segment": form.get("beta_segment", ""),
        "beta_attribute": form.get("beta_attribute", ""),
        "rules": form.get("rules", "[]"),
        "guardrails": rails,
        "policy": {k: form.get(f"policy-{k}", "") for k in policy_fields()},
        "maturation": {e: form.get(f"mature-{e}", "") for e in maturation_defaults()},
        "freeze": [
            {"key": k, **{f: form.get(f"freeze-{k}-{f}", "") for f in freeze_fields}}
            for k in row_keys(form, "freeze_key")
        ],
        "report_segments": ints("report_segments"),
    }
