"""Rollouts: the list, a new rollout, and the control panel (stage timeline, actions, kill switch,
gates, approvals of this rollout, decisions with their evidence, charts, settings, model switch).

Every change goes through the engine (`campaigns.rollout`): the state machine checks roles, four
eyes, freeze windows and gates, and writes the audit log. A move that needs a second person becomes
a pending approval, exactly as over the API.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, current_user, require_role
from app.extensions import db, get_runtime
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from app.ui.charts import exposure_chart, primary_charts
from campaigns.decisions.by_hand import set_segment_by_hand
from campaigns.decisions.evaluation import run_evaluation
from campaigns.errors import InputError, StateError
from campaigns.ops import alerts
from campaigns.recommender import registry
from campaigns.reports.impact import confirmations, rollout_impact
from campaigns.rollout import approvals, changes, plans, service
from campaigns.rollout.audit import history
from campaigns.rollout.machine import ACTIONS, ApprovalRequired, transition
from campaigns.rollout.shadow import shadow_report
from campaigns.rollout.status import list_rollouts, rollout_status, where_now
from models import Campaign, Decision, Role, Rollout, Segment

DECISIONS_SHOWN = 50


def _role() -> Role:
    user = current_user()
    return user.role_enum if user else Role.viewer


def _back(rollout_id: int) -> str:
    return url_for("ui.rollouts_detail", rollout_id=rollout_id)


@ui.route("/rollouts")
@require_role(Role.viewer)
def rollouts() -> str:
    rows = list_rollouts(db(), request.args.get("state") or None)
    return render_template(
        "ui/rollouts.html", rollouts=[rollout_status(db(), r, with_forecast=False) for r in rows]
    )


@ui.route("/rollouts/<int:rollout_id>")
@require_role(Role.viewer)
def rollouts_detail(rollout_id: int) -> str:
    rollout = service.get_rollout(db(), rollout_id)
    status = rollout_status(db(), rollout)
    decisions = list(
        db().scalars(
            sa.select(Decision)
            .where(Decision.rollout_id == rollout_id)
            .order_by(Decision.id.desc())
            .limit(DECISIONS_SHOWN)
        )
    )
    audits = history(db(), rollout_id)
    campaigns = (
        db().scalars(sa.select(Campaign).where(Campaign.rollout_id == rollout_id).order_by(Campaign.id)).all()
    )
    return render_template(
        "ui/rollout_detail.html",
        rollout=rollout,
        status=status,
        confirms=_confirms(rollout, status),
        decisions=decisions,
        audits=audits[:20],
        campaigns=campaigns,
        exposure=exposure_chart(rollout, audits, decisions),
        primary=primary_charts(decisions),
        shadow=shadow_report(db(), rollout_id),
        models=[v for v in registry.versions(db()) if v.status == "ready"],
        me_email=actor(),
    )


def _confirms(rollout: Rollout, status: dict[str, Any]) -> dict[str, str]:
    """What each dangerous button's confirmation says, with this rollout's numbers."""
    from campaigns.rollout.machine import exposure_after
    from campaigns.rollout.stages import parse_plan

    stages = parse_plan(list(rollout.stages or []))
    advance = next((a for a in status["next_actions"] if a["action"] == "advance"), None)
    targets = {}
    if advance is not None:
        completing = advance["to_state"] == "completed"
        targets["advance"] = 10_000 if completing else exposure_after(rollout, stages, advance["to_stage"])
    events = (status.get("gates") or {}).get("observed", {}).get("events")
    return confirmations(rollout, rollout_impact(db(), rollout.id), targets, events)


def _reason() -> str:
    reason = request.form.get("reason", "").strip()
    if not reason:
        raise InputError("say why: the reason goes into the audit log", where="reason")
    return reason


@ui.route("/rollouts/<int:rollout_id>/act/<action>", methods=["POST"])
@require_role(Role.marketer)
def rollouts_act(rollout_id: int, action: str) -> Response:
    """start, advance, pause, resume, rollback, unkill and the kill switch."""
    if action not in ACTIONS:
        abort(404)
    back = _back(rollout_id)
    session = db()
    try:
        reason = _reason()
        if action == "kill":
            service.kill(session, rollout_id, actor(), reason)
            flash("Kill switch on: every contact not yet sent gets the control content.", "success")
            return redirect(back)
        rollout = service.get_rollout(session, rollout_id)
        transition(
            session,
            rollout,
            action,
            actor(),
            reason,
            role=_role(),
            override_gates=request.form.get("override_gates") == "on",
        )
        session.commit()
        flash(f"Done: {action}. The rollout is now {where_now(rollout)}.", "success")
    except ApprovalRequired as exc:
        session.rollback()
        rollout = service.get_rollout(session, rollout_id)
        approval = approvals.request_approval(session, rollout, exc.action, actor(), reason)
        session.commit()
        flash(f"{exc} Approval #{approval.id} requested; an approver other than you must approve it.", "info")
    except (InputError, StateError) as exc:
        session.rollback()
        flash(describe(exc), "error")
    return redirect(back)


@ui.route("/rollouts/<int:rollout_id>/segments/<int:segment_id>/<move>", methods=["POST"])
@require_role(Role.marketer)
def rollouts_segment(rollout_id: int, segment_id: int, move: str) -> Response:
    """Exclude a report segment from the rollout, or include it again: in every state."""
    if move not in ("exclude", "include"):
        abort(404)
    session = db()
    try:
        rollout = service.get_rollout(session, rollout_id)
        _, decision = set_segment_by_hand(
            session, rollout, segment_id, f"{move}_segment", actor(), _reason(), role=_role()
        )
        decision_id = int(decision.id)
        session.commit()
        alerts.enqueue_for_decision(get_runtime(), decision_id)
        flash(f"Segment {segment_id} {move}d: audited and sent to the webhooks.", "success")
    except (InputError, StateError) as exc:
        session.rollback()
        flash(describe(exc), "error")
    return redirect(_back(rollout_id))


@ui.route("/settings/rollout-plan", methods=["GET", "POST"])
@require_role(Role.viewer)
def rollout_plan_settings() -> str | Response | tuple[str, int]:
    """The workspace's default plan, as the same stage rows as a rollout's plan: every new rollout
    starts from it (admins edit it). Every field's error shows at once, at its field."""
    from app.ui.rollout_form import field_of, stages_from_form
    from app.ui.rollout_form_values import posted_values, stage_rows
    from app.ui.rollout_settings import _next_key
    from campaigns.rollout.stages import STAGE_KINDS

    current = plans.workspace_plan(db())
    errors: dict[str, str] = {}
    rows = stage_rows(current["stages"])
    holdout_text = f"{current['holdout_bp'] / 100:g}"
    if request.method == "POST":
        if not _role().allows(Role.admin):
            abort(403)
        form = request.form
        rows, holdout_text = posted_values(form)["stages"], form.get("holdout_percent", "").strip()
        stages = stages_from_form(form, errors)
        holdout = 0
        try:
            holdout = round(float(holdout_text.replace(",", ".")) * 100)
        except ValueError:
            errors["holdout_percent"] = f"{holdout_text!r} is not a percentage"
        if not errors:
            try:
                plans.set_workspace_plan(db(), {"stages": stages, "holdout_bp": holdout}, actor())
                db().commit()
                flash("Default plan saved: new rollouts start from it.", "success")
                return redirect(url_for("ui.rollout_plan_settings"))
            except (InputError, StateError) as exc:
                db().rollback()
                where = field_of(exc.where, form) if isinstance(exc, InputError) else "stages"
                errors[where or "stages"] = exc.message if isinstance(exc, InputError) else str(exc)
    segments = db().execute(sa.select(Segment.id, Segment.name).order_by(Segment.name)).all()
    page = render_template(
        "ui/rollout_plan_settings.html", stages=rows, holdout=holdout_text, errors=errors,
        kinds=STAGE_KINDS, segments=[(int(i), str(n)) for i, n in segments], next_key=_next_key,
    )  # fmt: skip
    return (page, 400) if errors else page


@ui.route("/rollouts/<int:rollout_id>/evaluate", methods=["POST"])
@require_role(Role.marketer)
def rollouts_evaluate(rollout_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    db().rollback()  # the evaluation runs in its own transaction

    def evaluate() -> Decision:
        decision = db().get(Decision, run_evaluation(rollout_id, actor=actor()))
        assert decision is not None
        return decision

    return perform(
        evaluate,
        success=lambda d: f"Evaluated: {d.outcome}." + (f" {d.reasons[0]}" if d.reasons else ""),
        back=_back(rollout_id),
    )


@ui.route("/rollouts/<int:rollout_id>/model", methods=["POST"])
@require_role(Role.marketer)
def rollouts_model(rollout_id: int) -> Response:
    def switch() -> Rollout:
        rollout = service.get_rollout(db(), rollout_id)
        if request.form.get("back") == "1":
            changes.switch_back(db(), rollout, actor(), _reason(), role=_role())
        else:
            version = request.form.get("model_version_id", type=int)
            if version is None:
                raise InputError("choose a model version", where="model_version_id")
            changes.switch_model(db(), rollout, version, actor(), _reason(), role=_role())
        return rollout

    return perform(
        switch,
        success=lambda r: f"Live model version: {r.model_version_id or 'the champion'}.",
        back=_back(rollout_id),
    )


@ui.route("/rollouts/<int:rollout_id>/rerandomize", methods=["POST"])
@require_role(Role.marketer)
def rollouts_rerandomize(rollout_id: int) -> Response:
    def rerandomize() -> Any:
        return changes.rerandomize(
            db(), service.get_rollout(db(), rollout_id), actor(), _reason(), role=_role()
        )

    return perform(rerandomize, success="New salt: every contact has a new bucket.", back=_back(rollout_id))
