"""Four-eyes approvals over the API: a rollout's approvals, asking for one (marketer), approving or
rejecting it (approver, never one's own request). The engine (campaigns.rollout.approvals) checks
the rules and applies an approved transition."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify
from pydantic import Field

from app.api.responses import ApprovalDecided, ApprovalList, ApprovalOut
from app.api.rollout_segments import acting_role, required_reason
from app.api.rollouts import TAG, ActionIn
from app.api.schema import ApiModel, Reason
from app.api.spec import route
from app.auth import actor
from app.extensions import db
from campaigns.errors import NotFound
from campaigns.rollout import approvals, service
from campaigns.rollout.audit import audit_to_json
from models import Approval, Role


class ApproveIn(ApiModel):
    reason: str = Field("", max_length=2000)
    override_gates: bool = False
    evidence: dict[str, Any] = Field(default_factory=dict)


class ApprovalRequestIn(ApiModel):
    action: Literal["advance", "start"] = "advance"
    reason: Reason


@route(
    "/rollouts/<int:rollout_id>/approvals",
    "GET",
    role=Role.viewer,
    summary="Approvals of a rollout",
    tag=TAG,
    response=ApprovalList,
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
    body=ApprovalRequestIn,
    tag=TAG,
    status=201,
    response=ApprovalOut,
)
def rollouts_request_approval(rollout_id: int, body: ApprovalRequestIn) -> tuple[Response, int]:
    rollout = service.get_rollout(db(), rollout_id)
    approval = approvals.request_approval(db(), rollout, body.action, actor(), required_reason(body.reason))
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
    body=ApproveIn,
    tag=TAG,
    response=ApprovalDecided,
)
def approvals_approve(approval_id: int, body: ApproveIn) -> Response:
    approval = _approval(approval_id)
    row = approvals.approve(
        db(), approval.id, actor(), acting_role(), body.reason, override_gates=body.override_gates
    )
    db().commit()
    return jsonify(approval=approvals.approval_to_json(approval), audit=audit_to_json(row))


@route(
    "/approvals/<int:approval_id>/reject",
    "POST",
    role=Role.approver,
    summary="Reject an approval request",
    body=ActionIn,
    tag=TAG,
    response=ApprovalDecided,
)
def approvals_reject(approval_id: int, body: ActionIn) -> Response:
    approval = approvals.reject(
        db(), _approval(approval_id).id, actor(), acting_role(), required_reason(body.reason)
    )
    db().commit()
    return jsonify(approval=approvals.approval_to_json(approval))
