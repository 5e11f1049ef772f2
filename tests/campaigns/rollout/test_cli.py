"""`mailramp rollout kill ID` and friends."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.auth import create_user
from campaigns.rollout.service import is_killed
from models import Role


def test_kill_and_audit_from_the_shell(app: Any, session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rollout", "start", str(rollout.id), "--reason", "go"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["rollout", "kill", str(rollout.id), "--reason", "complaints"])
    assert result.exit_code == 0, result.output
    assert "killed" in result.output
    assert is_killed(session, rollout.id)
    result = runner.invoke(args=["rollout", "audit", str(rollout.id)])
    assert "kill" in result.output and "complaints" in result.output
    result = runner.invoke(args=["rollout", "resume", str(rollout.id), "--reason", "x"])
    assert result.exit_code != 0 and "cannot resume" in result.output


def test_approval_from_the_shell_needs_another_approver(
    app: Any, session: Session, make_rollout: Any
) -> None:
    with app.test_request_context():
        from app.extensions import db

        create_user("ada@example.com", "pw-long-enough-123", Role.approver)
        create_user("bob@example.com", "pw-long-enough-123", Role.approver)
        db().commit()
    rollout = make_rollout(approval_from_bp=0, stages=[{"kind": "percent", "exposure_bp": 100}])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rollout", "start", str(rollout.id), "-r", "go", "--as", "ada@example.com"])
    assert result.exit_code == 0 and "approval" in result.output
    approval_id = result.output.split("approval ")[1].split(" ")[0]
    result = runner.invoke(args=["rollout", "approve", approval_id, "--as", "ada@example.com"])
    assert result.exit_code != 0 and "four eyes" in result.output
    result = runner.invoke(args=["rollout", "approve", approval_id, "--as", "bob@example.com"])
    assert result.exit_code == 0, result.output
    assert "ramping" in result.output
