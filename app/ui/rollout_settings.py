"""A rollout's settings page and the new-rollout page: forms with errors at their fields
(`app.ui.rollout_form`), and the same settings as JSON under "Advanced". Saving goes through
`campaigns.rollout.changes` (validated, audited; some changes need the approver role)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, current_user, require_role
from app.extensions import db
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from app.ui.rollout_form import (
    LATENCY,
    POLICY_FIELDS,
    RATE_GUARDRAILS,
    WEEKDAYS,
    Parsed,
    basic_settings,
    field_of,
    maturation_defaults,
    policy_fields,
    settings_from_form,
)
from app.ui.rollout_form_values import form_values, posted_values
from campaigns.decisions.policy import ADVANCE_WHEN, PRIMARY_METRICS
from campaigns.errors import InputError, StateError
from campaigns.recommender import registry
from campaigns.reports.impact import confirmations, rollout_impact
from campaigns.rollout import changes, plans, service
from campaigns.rollout.stages import STAGE_KINDS
from models import Role, Rollout, Segment

JSON_SETTINGS = ("stages", "targeting", "guardrails", "freeze_windows")


def _role() -> Role:
    user = current_user()
    return user.role_enum if user else Role.viewer


def _json_values(rollout: Rollout | None) -> dict[str, str]:
    values = {
        "stages": json.dumps(rollout.stages if rollout else plans.workspace_plan(db())["stages"], indent=2),
        "targeting": json.dumps(rollout.targeting if rollout else {}, indent=2),
        "guardrails": json.dumps(rollout.guardrails if rollout else {}, indent=2),
        "freeze_windows": json.dumps(rollout.freeze_windows if rollout else [], indent=2),
    }
    if request.method == "POST" and request.form.get("mode") == "json":
        values.update({k: request.form.get(k, values[k]) for k in JSON_SETTINGS})
    return values


def _next_key(rows: list[dict[str, Any]]) -> int:
    """A key no row has yet, for rows the browser adds."""
    return max((int(r["key"]) for r in rows if str(r["key"]).isdigit()), default=-1) + 1


def _page(rollout: Rollout | None, errors: dict[str, str] | None = None, error: str = "") -> str:
    posted = request.method == "POST" and request.form.get("mode") != "json"
    segments = db().execute(sa.select(Segment.id, Segment.name).order_by(Segment.name)).all()
    return render_template(
        "ui/rollout_settings.html",
        rollout=rollout,
        v=posted_values(request.form)
        if posted
        else form_values(rollout, plans.workspace_plan(db())["stages"]),
        errors=errors or {},
        error=error,
        json_values=_json_values(rollout),
        advanced_open=request.form.get("mode") == "json",
        segments=[(int(i), str(n)) for i, n in segments],
        metrics=[(m, m.replace("_", " ")) for m in PRIMARY_METRICS],
        kinds=STAGE_KINDS,
        rate_guardrails=RATE_GUARDRAILS,
        latency=LATENCY,
        policy_fields=[(k, *POLICY_FIELDS[k]) for k in policy_fields()],
        advance_when=ADVANCE_WHEN,
        maturation=maturation_defaults(),
        weekdays=list(enumerate(WEEKDAYS)),
        models=[v for v in registry.versions(db()) if v.status == "ready"],
        form=request.form,
        next_key=_next_key,
        rerandomize_confirm=(
            confirmations(rollout, rollout_impact(db(), rollout.id), {})["rerandomize"] if rollout else ""
        ),
    )


def _json_settings() -> dict[str, Any]:
    """The "Advanced" JSON boxes as settings (the engine validates them)."""
    settings: dict[str, Any] = {}
    for key in JSON_SETTINGS:
        raw = request.form.get(key, "").strip()
        if not raw:
            continue
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} (line {exc.lineno})", where=key) from exc
    return settings


def _posted(rollout: Rollout | None) -> Parsed:
    if request.form.get("mode") == "json":
        parsed = basic_settings(request.form)
        parsed.settings.update(_json_settings())
        return parsed
    return settings_from_form(request.form, rollout)


def _same_policy(rollout: Rollout, wanted: dict[str, Any]) -> bool:
    from campaigns.decisions.policy import parse_config

    try:
        metric = wanted.get("primary_metric", rollout.primary_metric)
        return parse_config(metric, rollout.guardrails) == parse_config(metric, wanted["guardrails"])
    except InputError:
        return False


def _failed(rollout: Rollout | None, exc: InputError | StateError) -> tuple[str, int]:
    db().rollback()
    if isinstance(exc, InputError) and exc.where and request.form.get("mode") != "json":
        name = field_of(exc.where, request.form)
        return _page(rollout, {name: exc.message}, f"Not saved: {describe(exc)}"), 400
    return _page(rollout, {}, f"Not saved: {describe(exc)}"), 400


@ui.route("/rollouts/new", methods=["GET", "POST"])
@require_role(Role.marketer)
def rollouts_new() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        return _page(None)
    parsed = _posted(None)
    if parsed.errors:
        return _page(None, parsed.errors, "Not saved: see the fields marked below."), 400
    settings = parsed.settings
    model = request.form.get("model_version_id", type=int)
    if model:
        settings["model_version_id"] = model
    try:
        name = settings.pop("name", "")
        if not name:
            raise InputError("a rollout needs a name", where="name")
        settings = {k: v for k, v in settings.items() if k != "approval_from_bp" or v is not None}
        rollout = changes.create_rollout(db(), name, actor(), **settings)
    except (InputError, StateError) as exc:
        return _failed(None, exc)
    return perform(
        lambda: rollout,
        success=lambda r: f"Created draft rollout {r.name}.",
        back=lambda r: url_for("ui.rollouts_detail", rollout_id=r.id),
    )


@ui.route("/rollouts/<int:rollout_id>/settings", methods=["GET", "POST"])
@require_role(Role.marketer)
def rollouts_settings(rollout_id: int) -> str | Response | tuple[str, int]:
    rollout = service.get_rollout(db(), rollout_id)
    if request.method == "GET":
        return _page(rollout)
    parsed = _posted(rollout)
    if parsed.errors:
        return _page(rollout, parsed.errors, "Not saved: see the fields marked below."), 400
    try:
        reason = request.form.get("reason", "").strip()
        if not reason:
            raise InputError("say why: the reason goes into the audit log", where="reason")
        wanted = changes.clean_settings(parsed.settings)
        changed = {k: v for k, v in wanted.items() if v != getattr(rollout, k)}
        if "guardrails" in changed and _same_policy(rollout, wanted):
            del changed["guardrails"]  # the form spells out defaults the stored JSON left implicit
        changes.update_rollout(db(), rollout, actor(), reason, changed, role=_role())
    except (InputError, StateError) as exc:
        return _failed(rollout, exc)
    return perform(
        lambda: rollout,
        success="Settings saved (and audited).",
        back=url_for("ui.rollouts_detail", rollout_id=rollout_id),
    )
