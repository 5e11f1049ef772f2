"""Rollouts over the API: read (viewer), change (marketer), four-eyes approvals (approver).

Thin handlers: fetch, call the engine (campaigns.rollout), commit, serialize. The engine checks the
finer rules (approver-only settings, four eyes, freeze windows, gates) and raises StateError (409),
RoleError (403) or InputError (400).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api.errors import json_body
from app.api.rollout_segments import enqueue_decisions_after, last_decision_id
from app.api.spec import api, route
from app.auth import actor, current_user
from app.extensions import db
from campaigns.errors import InputError, NotFound
from campaigns.rollout import approvals, changes, service
from campaigns.rollout.assignment import assign
from campaigns.rollout.audit import audit_to_json, history
from campaigns.rollout.machine import ApprovalRequired, RoleError, transition
from campaigns.rollout.shadow import shadow_report
from campaigns.rollout.status import list_rollouts, rollout_status, rollout_summary
from models import Approval, Role

TAG = "rollouts"
_REASON = {"reason": {"type": "string", "description": "why: written to the audit log"}}
_ACTION_BODY = {
    "type": "object",
    "properties": {
        **_REASON,
        "override_gates": {
            "type": "boolean",
            "description": "advance although the stage has no matured evidence: approver role only, audited",
        },
        "evidence": {"type": "object"},
    },
    "required": ["reason"],
}
_SETTING_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string"},
    "series": {"type": "string"},
    "stages": {"type": "array", "items": {"type": "object"}},
    "targeting": {"type": "object"},
    "holdout_bp": {"type": "integer"},
    "primary_metric": {"type": "string"},
    "guardrails": {"type": "object"},
    "approval_from_bp": {"type": ["integer", "null"]},
    "decision_mode": {"enum": ["auto", "approval"]},
    "freeze_windows": {"type": "array", "items": {"type": "object"}},
    "plan": {
        "enum": ["staged", "manual"],
        "description": "staged (default: the workspace plan, gates on every stage, a comparison group) or "
        "manual (a one-stage or gate-less plan, chosen explicitly)",
    },
    "report_segments": {
        "type": "array",
        "items": {"type": "integer"},
        "description": "segment ids (at most 10) whose metrics are kept apart and tested on their own; "
        "a segment harmed while the rest is not is excluded",
    },
}
_SETTINGS: dict[str, Any] = {
    "type": "object",
    "properties": {**_SETTING_PROPERTIES, "model_version_id": {"type": ["integer", "null"]}},
    "required": ["name"],
}


@api.errorhandler(RoleError)
def _role_error(exc: RoleError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 403


def _role() -> Role:
    user = current_user()
    return user.role_enum if user else Role.viewer


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("say why: a reason is required", where="reason")
    return reason


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InputError("must be true or false", where=name)
    return value


@route(
    "/rollouts", "GET", role=Role.viewer, summary="List rollouts", query={"state": "only this state"}, tag=TAG
)
def rollouts_list() -> Response:
    rows = list_rollouts(db(), request.args.get("state") or None)
    return jsonify(rollouts=[rollout_summary(r) for r in rows])


@route("/rollouts", "POST", role=Role.marketer, summary="Create a draft rollout", body=_SETTINGS, tag=TAG)
def rollouts_create() -> tuple[Response, int]:
    body = json_body()
    name = body.pop("name", None)
    if not isinstance(name, str) or not name.strip():
        raise InputError("a rollout needs a name", where="name")
    rollout = changes.create_rollout(db(), name, actor(), **body)
    db().commit()
    return jsonify(rollout_status(db(), rollout)), 201


@route(
    "/rollouts/<int:rollout_id>",
    "GET",
    role=Role.viewer,
    summary="A rollout and what may happen next",
    tag=TAG,
)
def rollouts_get(rollout_id: int) -> Response:
    return jsonify(rollout_status(db(), service.get_rollout(db(), rollout_id)))


@route(
    "/rollouts/<int:rollout_id>",
    "PATCH",
    role=Role.marketer,
    summary="Edit settings (plan, targeting, gates, freeze windows...)",
    body={"type": "object", "properties": {**_SETTING_PROPERTIES, **_REASON}, "required": ["reason"]},
    tag=TAG,
)
def rollouts_update(rollout_id: int) -> Response:
    body = json_body()
    reason = _reason(body)
    body.pop("reason")
    rollout = service.get_rollout(db(), rollout_id)
    before = last_decision_id(rollout_id)
    changes.update_rollout(db(), rollout, actor(), reason, body, role=_role())
    db().commit()
    enqueue_decisions_after(rollout_id, before)
    return jsonify(rollout_status(db(), rollout))


def _transition(rollout_id: int, action: str) -> tuple[Response, int]:
    body = json_body()
    reason = _reason(body)
    evidence = body.get("evidence") or {}
    if not isinstance(evidence, dict):
        raise InputError("must be an object", where="evidence")
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
            role=_role(),
            override_gates=_flag(body, "override_gates"),
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


def _register(action: str, summary: str, role: Role) -> None:
    def view(rollout_id: int) -> tuple[Response, int]:
        return _transition(rollout_id, action)

    view.__name__ = f"rollouts_{action}"
    route(
        f"/rollouts/<int:rollout_id>/{action}", "POST", role=role, summary=summary, body=_ACTION_BODY, tag=TAG
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
    body=_ACTION_BODY,
    tag=TAG,
)
def rollouts_rerandomize(rollout_id: int) -> Response:
    body = json_body()
    rollout = service.get_rollout(db(), rollout_id)
    changes.rerandomize(db(), rollout, actor(), _reason(body), role=_role())
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/model",
    "POST",
    role=Role.approver,
    summary="Blue-green: switch the live model version",
    body={
        "type": "object",
        "properties": {"model_version_id": {"type": "integer"}, **_REASON},
        "required": ["model_version_id", "reason"],
    },
    tag=TAG,
)
def rollouts_switch_model(rollout_id: int) -> Response:
    body = json_body()
    version = body.get("model_version_id")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError("must be a model version id", where="model_version_id")
    rollout = service.get_rollout(db(), rollout_id)
    changes.switch_model(db(), rollout, version, actor(), _reason(body), role=_role())
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/model/switch-back",
    "POST",
    role=Role.marketer,
    summary="Switch back to the previous model version",
    body=_ACTION_BODY,
    tag=TAG,
)
def rollouts_switch_back(rollout_id: int) -> Response:
    body = json_body()
    rollout = service.get_rollout(db(), rollout_id)
    changes.switch_back(db(), rollout, actor(), _reason(body), role=_role())
    db().commit()
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/audit",
    "GET",
    role=Role.viewer,
    summary="The audit log, newest first",
    query={"limit": "at most this many rows"},
    tag=TAG,
)
def rollouts_audit(rollout_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    limit = request.args.get("limit", "")
    if limit and not limit.isdigit():
        raise InputError("must be a whole number", where="limit")
    rows = history(db(), rollout_id, int(limit) if limit else None)
    return jsonify(audit=[audit_to_json(r) for r in rows])


@route(
    "/rollouts/<int:rollout_id>/arms/<int:contact_id>",
    "GET",
    role=Role.viewer,
    summary="The arm a contact is in now, and why",
    tag=TAG,
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
)
def rollouts_shadow(rollout_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    return jsonify(stages=shadow_report(db(), rollout_id))


@route(
    "/rollouts/<int:rollout_id>/approvals", "GET", role=Role.viewer, summary="Approvals of a rollout", tag=TAG
)
def rollouts_approvals(rollout_id: int) -> Response:
    service.get_rollout(db(), rollout_id)
    rows = db().query(Approval).filter(Approval.rollout_id == rollout_id).order_by(Approval.id.desc()).all()
    return jsonify(approvals=[approvals.approval_to_json(a) for a in rows])


@route(
    "/rollouts/<int:rollout_id>/approvals",
    "POST",
    role=Role.marketer,
    summary="Ask for an approval of the next advance (or start)",
    body={
        "type": "object",
        "properties": {"action": {"enum": ["advance", "start"]}, **_REASON},
        "required": ["reason"],
    },
    tag=TAG,
)
def rollouts_request_approval(rollout_id: int) -> tuple[Response, int]:
    body = json_body()
    rollout = service.get_rollout(db(), rollout_id)
    approval = approvals.request_approval(
        db(), rollout, str(body.get("action", "advance")), actor(), _reason(body)
    )
    db().commit()
    return jsonify(approvals.approval_to_json(approval)), 201


def _approval(approval_id: int) -> Approval:
    approval = db().get(Approval, approval_id)
    if approval is None:
        raise NotFound(f"approval {approval_id} does not exist")
    return approval


@route(
    "/approvals/<int:approval_id>/approve",
    "POST",
    role=Role.approver,
    summary="Approve and apply (four eyes: not your own request)",
    body=_ACTION_BODY,
    tag=TAG,
)
def approvals_approve(approval_id: int) -> Response:
    body = json_body()
    reason = body.get("reason") or ""
    if not isinstance(reason, str):
        raise InputError("must be text", where="reason")
    approval = _approval(approval_id)
    row = approvals.approve(
        db(), approval.id, actor(), _role(), reason, override_gates=_flag(body, "override_gates")
    )
    db().commit()
    return jsonify(approval=approvals.approval_to_json(approval), audit=audit_to_json(row))


@route(
    "/approvals/<int:approval_id>/reject",
    "POST",
    role=Role.approver,
    summary="Reject an approval request",
    body=_ACTION_BODY,
    tag=TAG,
)
def approvals_reject(approval_id: int) -> Response:
    body = json_body()
    approval = approvals.reject(db(), _approval(approval_id).id, actor(), _role(), _reason(body))
    db().commit()
    return jsonify(approval=approvals.approval_to_json(approval))
