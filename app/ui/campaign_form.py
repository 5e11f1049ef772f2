"""The campaign form -> the engine's campaign payload (the same shape as POST /api/v1/campaigns)."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from campaigns.errors import InputError


def _int_or_none(form: MultiDict[str, str], name: str) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"{raw!r} is not a whole number", where=name) from exc


def _number(form: MultiDict[str, str], name: str) -> Any:
    """A number when the box holds one; otherwise the text itself, for the engine to refuse by name."""
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return raw
    return int(value) if value.is_integer() and name == "max_per_category" else value


def recommendation_rules(form: MultiDict[str, str]) -> dict[str, Any]:
    """Only the rules the marketer filled in; the engine validates them (`recommendation_rules.*`)."""
    rules: dict[str, Any] = {}
    for key in ("categories", "exclude_categories"):
        names = [c.strip() for c in form.get(key, "").split(",") if c.strip()]
        if names:
            rules[key] = names
    for key in ("min_price", "max_price", "max_per_category"):
        value = _number(form, key)
        if value is not None:
            rules[key] = value
    return rules


def campaign_payload(form: MultiDict[str, str]) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "kind": form.get("schedule_kind", "now"),
        "timezone": form.get("timezone", "").strip() or "UTC",
    }
    if schedule["kind"] == "at":
        if not form.get("send_at"):
            raise InputError("choose the date and time to send", where="schedule.send_at")
        schedule["send_at"] = form["send_at"]  # wall-clock time in the chosen timezone
    elif schedule["kind"] == "recurring":
        schedule["cron"] = form.get("cron", "").strip()
    payload: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "template_id": _int_or_none(form, "template_id"),
        "segment_id": _int_or_none(form, "segment_id"),
        "subject": form.get("subject", "").strip(),
        "from_email": form.get("from_email", "").strip(),
        "from_name": form.get("from_name", "").strip(),
        "wave_size": _int_or_none(form, "wave_size"),
        "series": form.get("series", "").strip(),
        "schedule": schedule,
    }
    rollout_id = _int_or_none(form, "rollout_id")
    if rollout_id is not None:
        payload["rollout_id"] = rollout_id
    elif form.get("ai") == "on":
        ai: dict[str, Any] = {
            # the cap where the workspace's staged plan stops ramping; the holdout defaults to the plan's
            "exposure_percent": form.get("exposure_percent", "100").strip() or "100",
            "primary_metric": form.get("primary_metric", "conversion_rate"),
            "plan": "manual" if form.get("manual_plan") == "on" else "staged",
        }
        if form.get("holdout_percent", "").strip():
            ai["holdout_percent"] = form.get("holdout_percent", "").strip()
        model = _int_or_none(form, "model_version_id")
        if model is not None:
            ai["model_version_id"] = model
        payload["ai"] = ai
    rules = recommendation_rules(form)
    if rules:
        payload["recommendation_rules"] = rules
    return payload
