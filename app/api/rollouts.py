"""Rollouts over the API: read (viewer), change (marketer); asking for, approving and rejecting four-eyes
approvals is app.api.approvals.

Thin handlers: fetch, call the engine (campaigns.rollout), commit, serialize. The engine checks the
finer rules (approver-only settings, four eyes, freeze windows, gates) and raises StateError (409),
RoleError (403) or InputError (400).
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, Field

from app.api.responses_rollouts import (
    ApprovalAsked,
    ArmOut,
    AuditList,
    RolloutList,
    RolloutStatus,
    RolloutTransitioned,
    ShadowReport,
)
from app.api.rollout_segments import acting_role, enqueue_decisions_after, last_decision_id, required_reason
from app.api.schema import ApiModel, Id, QueryModel, Reason
from app.api.spec import api, route
from app.auth import actor
from app.extensions import db
from campaigns.errors import InputError
from campaigns.rollout import approvals, changes, service
from campaigns.rollout.assignment import assign
from campaigns.rollout.audit import audit_to_json, history
from campaigns.rollout.machine import ApprovalRequired, RoleError, transition
from campaigns.rollout.shadow import shadow_report
from campaigns.rollout.status import list_rollouts, rollout_status, rollout_summary
from models import Role

TAG = "rollouts"


class ActionIn(ApiModel):
    reason: Reason
    override_gates: bool = Field(
        False, description="advance although the stage has no matured evidence: approver role only, audited"
    )
    evidence: dict[str, Any] = Field(default_factory=dict)


class RolloutPatch(ApiModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    series: str | None = Field(None, max_length=200)
    stages: list[dict[str, Any]] | None = None
    targeting: dict[str, Any] | None = None
    holdout_bp: int | None = Field(None, ge=0, le=10_000)
    primary_metric: str | None = Field(None, max_length=100)
    guardrails: dict[str, Any] | None = None
    approval_from_bp: int | None = Field(None, ge=0, le=10_000)
    decision_mode: Literal["auto", "approval"] | None = None
    freeze_windows: list[dict[str, Any]] | None = None
    plan: Literal["staged", "manual"] | None = Field(
        None,
        description="staged (default: the workspace plan, gates on every stage, a comparison group) or "
        "manual (a one-stage or gate-less plan, chosen explicitly)",
    )
    report_segments: list[Id] | None = Field(
        None,
        max_length=10,
        description="segment ids (at most 10) whose metrics are kept apart and tested on their own; "
        "a segment harmed while the rest is not is excluded",
    )


class RolloutIn(RolloutPatch):
    name: str = Field(min_length=1, max_length=200)
    plan: Literal["staged", "manual"] = Field(
        "staged",
        description="staged (the workspace plan, gates on every stage, a comparison group) or manual "
        "(a one-stage or gate-less plan, chosen explicitly)",
    )
    model_version_id: Id | None = None


class RolloutEdit(RolloutPatch):
    reason: Reason


class SwitchModelIn(ApiModel):
    model_version_id: Id
    reason: Reason


class StateQuery(QueryModel):
    state: str | None = Field(None, max_length=50, description="only this state")


class AuditQuery(QueryModel):
    limit: int | None = Field(None, ge=1, le=100_000, description="at most this many rows")


@api.errorhandler(RoleError)
def _role_error(exc: RoleError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 403


@route(
    "/rollouts",
    "GET",
    role=Role.viewer,
    summary="List rollouts",
    query=StateQuery,
    tag=TAG,
    response=RolloutList,
)
def rollouts_list(query: StateQuery) -> Response:
    rows = list_rollouts(db(), query.state or None)
    return jsonify(rollouts=[rollout_summary(r) for r in rows])


@route(
    "/rollouts",
    "POST",
    role=Role.marketer,
    summary="Create a draft rollout",
    body=RolloutIn,
    tag=TAG,
    status=201,
    response=RolloutStatus,
)
def rollouts_create(body: RolloutIn) -> tuple[Response, int]:
    settings = body.model_dump(exclude_unset=True)
    name = settings.pop("name")
    if not name.strip():
        raise InputError("a rollout needs a name", where="name")
    rollout = changes.create_rollout(db(), name, actor(), **settings)
    db().commit()
    return jsonify(rollout_status(db(), rollout)), 201


@route(
    "/rollouts/<int:rollout_id>",
    "GET",
    role=Role.viewer,
    summary="A rollout and what may happen next",
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_get(rollout_id: int) -> Response:
    return jsonify(rollout_status(db(), service.get_rollout(db(), rollout_id)))


@route(
    "/rollouts/<int:rollout_id>",
    "PATCH",
    role=Role.marketer,
    summary="Edit settings (plan, targeting, gates, freeze windows...)",
    body=RolloutEdit,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_update(rollout_id: int, body: RolloutEdit) -> Response:
    reason = required_reason(body.reason)
    settings = body.model_dump(exclude_unset=True, exclude={"reason"})
    rollout = service.get_rollout(db(), rollout_id)
    before = last_decision_id(rollout_id)
    changes.update_rollout(db(), rollout, actor(), reason, settings, role=acting_role())
    db().commit()
    enqueue_decisions_after(rollout_id, before)
    return jsonify(rollout_status(db(), rollout))


def _transition(rollout_id: int, action: str, body: ActionIn) -> tuple[Response, int]:
    reason = required_reason(body.reason)
    evidence = body.evidence
    session = db()
    rollout = service.get_rollout(session, rollout_id)
    if action == "kill":
        service.kill(session, rollout_id, actor(), reason)
        return jsonify(rollout_status(session, rollout)), 200
    try:
        row = transition(
            session,
            rollout,
            action,
            actor(),
            reason,
            evidence,
            role=acting_role(),
            override_gates=body.override_gates,
        )
    except ApprovalRequired as exc:
        session.rollback()
        rollout = service.get_rollout(session, rollout_id)
        approval = approvals.request_approval(
            session, rollout, exc.action, actor(), reason, evidence=evidence
        )
        session.commit()
        return jsonify(approval_required=str(exc), approval=approvals.approval_to_json(approval)), 202
    session.commit()
    return jsonify(rollout_status(session, rollout) | {"audit": audit_to_json(row)}), 200


TRANSITION_BODIES: dict[int, type[BaseModel]] = {200: RolloutTransitioned, 202: ApprovalAsked}


def _register(action: str, summary: str, role: Role) -> None:
    def view(rollout_id: int, body: ActionIn) -> tuple[Response, int]:
        return _transition(rollout_id, action, body)

    view.__name__ = f"rollouts_{action}"
    route(
        f"/rollouts/<int:rollout_id>/{action}",
        "POST",
        role=role,
        summary=summary,
        body=ActionIn,
        tag=TAG,
        status=(200, 202),  # 202: four eyes needed, an approval request was made instead
        response=TRANSITION_BODIES,
    )(view)


_register("start", "Start: draft -> the first stage", Role.marketer)
_register(
    "advance",
    "Advance to the next stage (202 with an approval request when four eyes are needed)",
    Role.marketer,
)
_register("pause", "Pause: hold exposure, no advances", Role.marketer)
_register("resume", "Resume a paused rollout", Role.marketer)
_register("rollback", "Roll back: control content for everyone, for good", Role.marketer)
_register("kill", "Kill switch: control content for every contact not yet sent, at once", Role.marketer)
_register("unkill", "Lift the kill switch", Role.approver)


@route(
    "/rollouts/<int:rollout_id>/rerandomize",
    "POST",
    role=Role.marketer,
    summary="New salt (audited)",
    body=ActionIn,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_rerandomize(rollout_id: int, body: ActionIn) -> Response:
    rollout = service.get_rollout(db(), rollout_id)
    changes.rerandomize(db(), rollout, actor(), required_reason(body.reason), role=acting_role())
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/model",
    "POST",
    role=Role.approver,
    summary="Blue-green: switch the live model version",
    body=SwitchModelIn,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_switch_model(rollout_id: int, body: SwitchModelIn) -> Response:
    rollout = service.get_rollout(db(), rollout_id)
    changes.switch_model(
        db(), rollout, body.model_version_id, actor(), required_reason(body.reason), role=acting_role()
    )
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/model/switch-back",
    "POST",
    role=Role.marketer,
    summary="Switch back to the previous model version",
    body=ActionIn,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_switch_back(rollout_id: int, body: ActionIn) -> Response:
    rollout = service.get_rollout(db(), rollout_id)
    changes.switch_back(db(), rollout, actor(), required_reason(body.reason), role=acting_role())
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/audit",
    "GET",
    role=Role.viewer,
    summary="The audit log, newest first",
    query=AuditQuery,
    tag=TAG,
    response=AuditList,
)
def rollouts_audit(rollout_id: int, query: AuditQuery) -> Response:
    service.get_rollout(db(), rollout_id)
    rows = history(db(), rollout_id, query.limit)
    return jsonify(audit=[audit_to_json(r) for r in rows])


@route(
    "/rollouts/<int:rollout_id>/arms/<int:contact_id>",
    "GET",
    role=Role.viewer,
    summary="The arm a contact is in now, and why",
    tag=TAG,
    response=ArmOut,
)
def rollouts_arm(rollout_id: int, contact_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    spec = service.load_spec(db(), rollout_id)
    result = assign(spec, service.contact_frame(db(), spec, [contact_id]))
    return jsonify(
        contact_id=contact_id,
        arm=str(result.arms[0]),
        bucket=int(result.buckets[0]),
        shadow=bool(result.shadow[0]),
        forced=bool(result.forced[0]),
        failed=result.failed or spec.failed,
        state=spec.state,
        stage_index=spec.stage_index,
    )


@route(
    "/rollouts/<int:rollout_id>/shadow",
    "GET",
    role=Role.viewer,
    summary="Shadow and dark-launch report: AI path errors and latency per stage",
    tag=TAG,
    response=ShadowReport,
)
def rollouts_shadow(rollout_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    return jsonify(stages=shadow_report(db(), rollout_id))
