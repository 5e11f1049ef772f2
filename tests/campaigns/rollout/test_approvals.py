"""Four eyes: advancing past approval_from_bp needs an approver who is not the requester."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from campaigns.errors import StateError
from campaigns.rollout.approvals import approve, pending_approvals, reject, request_approval
from campaigns.rollout.machine import ApprovalRequired, RoleError, transition
from campaigns.rollout.service import get_rollout
from models import Role


def _at_five_percent(session: Session, make_rollout: Any) -> Any:
    rollout = make_rollout(approval_from_bp=2500)
    for action in ("start", "advance", "advance"):
        transition(session, rollout, action, "mia@example.com", "go", override_gates=True)
    session.commit()
    assert rollout.stage_index == 2
    return rollout


def test_requester_cannot_approve_own_request(session: Session, make_rollout: Any) -> None:
    rollout = _at_five_percent(session, make_rollout)
    with pytest.raises(ApprovalRequired):
        transition(session, rollout, "advance", "ada@example.com", "to 50%", override_gates=True)
    approval = request_approval(session, rollout, "advance", "ada@example.com", "5% looks fine")
    session.commit()
    assert approval.target_stage == 3 and approval.status == "pending"
    with pytest.raises(StateError, match="four eyes"):
        approve(session, approval.id, "ADA@example.com", Role.admin)  # even an admin, even in other case
    with pytest.raises(RoleError):
        approve(session, approval.id, "mia@example.com", Role.marketer)
    row = approve(
        session, approval.id, "bob@example.com", Role.approver, "checked the dashboard", override_gates=True
    )
    session.commit()
    assert (row.action, row.actor, row.from_stage, row.to_stage) == ("advance", "bob@example.com", 2, 3)
    assert row.evidence["snapshot"]["approval"] == {
        "id": approval.id,
        "requested_by": "ada@example.com",
        "approved_by": "bob@example.com",
    }
    assert approval.status == "approved" and approval.decided_by == "bob@example.com"
    assert get_rollout(session, rollout.id).stage_index == 3


def test_an_approval_is_for_one_move_and_goes_stale(session: Session, make_rollout: Any) -> None:
    rollout = _at_five_percent(session, make_rollout)
    approval = request_approval(session, rollout, "advance", "mia@example.com", "please")
    again = request_approval(session, rollout, "advance", "mia@example.com", "please!")
    assert again.id == approval.id  # one pending request per move
    transition(session, rollout, "rollback", "mia@example.com", "changed my mind")
    session.commit()
    with pytest.raises(StateError):
        approve(session, approval.id, "bob@example.com", Role.approver)


def test_a_forged_approval_does_not_pass(session: Session, make_rollout: Any) -> None:
    rollout = _at_five_percent(session, make_rollout)
    approval = request_approval(session, rollout, "advance", "mia@example.com", "please")
    approval.status, approval.decided_by = "approved", "mia@example.com"  # self-approved behind our back
    with pytest.raises(StateError, match="someone other than the requester"):
        transition(
            session, rollout, "advance", "mia@example.com", "go", approval=approval, override_gates=True
        )


def test_reject_is_audited_and_final(session: Session, make_rollout: Any) -> None:
    rollout = _at_five_percent(session, make_rollout)
    approval = request_approval(session, rollout, "advance", "mia@example.com", "please")
    reject(session, approval.id, "bob@example.com", Role.approver, "wait for Monday's data")
    session.commit()
    assert pending_approvals(session, rollout.id) == []
    with pytest.raises(StateError, match="already rejected"):
        approve(session, approval.id, "eve@example.com", Role.approver)


def test_decision_mode_approval_needs_approval_for_every_advance(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout(decision_mode="approval")
    with pytest.raises(ApprovalRequired):
        transition(session, rollout, "start", "evaluator", "auto")
