"""Four-eyes approvals: a move past `approval_from_bp` is asked for by one person and applied by another.

    request_approval(session, rollout, action, requested_by, reason, ...) -> Approval   (pending)
    approve(session, approval_id, approver, approver_role, reason)   -> RolloutAudit     (applies it)
    reject(session, approval_id, approver, approver_role, reason)    -> Approval

The approver needs the `approver` role (or admin) and must not be the requester; the approval is
for one move from one stage, so it goes stale (and cannot be applied) once the rollout has moved.
Requests and rejections are audited too. The caller commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import NotFound, StateError
from campaigns.rollout import audit
from campaigns.rollout.machine import RoleError, target_of, transition
from campaigns.rollout.stages import parse_plan
from models import Approval, Role, Rollout, RolloutAudit

APPROVABLE = ("start", "advance")


def request_approval(
    session: Session,
    rollout: Rollout,
    action: str,
    requested_by: str,
    reason: str,
    *,
    evidence: dict[str, Any] | None = None,
    decision_id: int | None = None,
    now: datetime | None = None,
) -> Approval:
    """A pending approval for `action` from the rollout's current stage (one per move: a second request
    for the same move returns the pending one)."""
    requested_by, reason = audit.require_words(requested_by, reason)
    if action not in APPROVABLE:
        raise StateError(f"only {' and '.join(APPROVABLE)} need approvals, not {action}")
    session.refresh(rollout)
    _, target = target_of(rollout, action, parse_plan(list(rollout.stages or [])))
    pending = session.scalar(
        sa.select(Approval).where(
            Approval.rollout_id == rollout.id,
            Approval.action == action,
            Approval.target_stage == target,
            Approval.status == "pending",
        )
    )
    if pending is not None:
        return pending
    now = now or datetime.now(UTC)
    approval = Approval(
        rollout_id=rollout.id,
        action=action,
        target_stage=target,
        requested_by=requested_by,
        requested_at=now,
        reason=reason,
        decision_id=decision_id,
    )
    session.add(approval)
    session.flush()
    audit.record_in_place(
        session,
        rollout,
        "request_approval",
        requested_by,
        reason,
        evidence={**(evidence or {}), "approval_id": approval.id, "action": action, "target_stage": target},
        now=now,
    )
    return approval


def _pending(
    session: Session, approval_id: int, approver: str, approver_role: Role
) -> tuple[Approval, Rollout]:
    approval = session.get(Approval, approval_id, with_for_update=True)
    if approval is None:
        raise NotFound(f"approval {approval_id} does not exist")
    if approval.status != "pending":
        raise StateError(f"approval {approval_id} is already {approval.status}")
    if not approver_role.allows(Role.approver):
        raise RoleError(f"deciding an approval needs the approver role; you are {approver_role.value}")
    if approver.strip().lower() == approval.requested_by.strip().lower():
        raise StateError("four eyes: the approver must be someone other than the requester")
    rollout = session.get(Rollout, approval.rollout_id)
    if rollout is None:
        raise NotFound(f"rollout {approval.rollout_id} does not exist")
    return approval, rollout


def approve(
    session: Session,
    approval_id: int,
    approver: str,
    approver_role: Role,
    reason: str = "",
    *,
    override_gates: bool = False,
    now: datetime | None = None,
) -> RolloutAudit:
    """Approve and apply the move at once. Raises StateError (nothing changes) when the move is no
    longer valid: the rollout moved on, a freeze window, unmet gates, a kill."""
    now = now or datetime.now(UTC)
    approval, rollout = _pending(session, approval_id, approver, approver_role)
    session.refresh(rollout)
    _, target = target_of(rollout, approval.action, parse_plan(list(rollout.stages or [])))
    if target != approval.target_stage:
        approval.status, approval.decided_by, approval.decided_at = "stale", approver, now
        session.flush()
        raise StateError(
            f"approval {approval_id} was for stage {approval.target_stage}; the rollout has moved "
            f"(the next move is to stage {target}): request a new approval"
        )
    approval.status, approval.decided_by, approval.decided_at = "approved", approver.strip(), now
    try:
        return transition(
            session,
            rollout,
            approval.action,
            approver,
            reason or f"approved: {approval.reason}",
            {
                "approval_id": approval.id,
                "requested_by": approval.requested_by,
                "request_reason": approval.reason,
            },
            role=approver_role,
            approval=approval,
            override_gates=override_gates,
            now=now,
        )
    except Exception:
        approval.status, approval.decided_by, approval.decided_at = "pending", None, None
        raise


def reject(
    session: Session,
    approval_id: int,
    approver: str,
    approver_role: Role,
    reason: str,
    *,
    now: datetime | None = None,
) -> Approval:
    approver, reason = audit.require_words(approver, reason)
    now = now or datetime.now(UTC)
    approval, rollout = _pending(session, approval_id, approver, approver_role)
    approval.status, approval.decided_by, approval.decided_at = "rejected", approver, now
    audit.record_in_place(
        session,
        rollout,
        "reject_approval",
        approver,
        reason,
        evidence={"approval_id": approval.id, "requested_by": approval.requested_by},
        now=now,
    )
    return approval


def pending_approvals(session: Session, rollout_id: int) -> list[Approval]:
    return list(
        session.scalars(
            sa.select(Approval)
            .where(Approval.rollout_id == rollout_id, Approval.status == "pending")
            .order_by(Approval.requested_at)
        )
    )


def approval_to_json(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "rollout_id": approval.rollout_id,
        "action": approval.action,
        "target_stage": approval.target_stage,
        "status": approval.status,
        "requested_by": approval.requested_by,
        "requested_at": approval.requested_at.isoformat(),
        "reason": approval.reason,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "decision_id": approval.decision_id,
    }
