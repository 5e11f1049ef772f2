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


def test_advancing_without_matured_evidence_needs_an_approver_from_the_shell(
    app: Any, session: Session, make_rollout: Any
) -> None:
    with app.test_request_context():
        from app.extensions import db

        create_user("mia@example.com", "pw-long-enough-123", Role.marketer)
        create_user("ada@example.com", "pw-long-enough-123", Role.approver)
        db().commit()
    rollout = make_rollout(
        stages=[{"kind": "percent", "exposure_bp": 100}, {"kind": "percent", "exposure_bp": 500}]
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["rollout", "start", str(rollout.id), "-r", "go"]).exit_code == 0
    result = runner.invoke(args=["rollout", "advance", str(rollout.id), "-r", "more"])
    assert result.exit_code != 0 and "no recipient of this stage has matured" in result.output
    result = runner.invoke(args=["rollout", "advance", str(rollout.id), "-r", "more", "--override-gates"])
    assert result.exit_code != 0 and "--as" in result.output
    as_mia = [
        "rollout",
        "advance",
        str(rollout.id),
        "-r",
        "more",
        "--override-gates",
        "--as",
        "mia@example.com",
    ]
    result = runner.invoke(args=as_mia)
    assert result.exit_code != 0 and "approver" in result.output
    as_ada = [
        "rollout",
        "advance",
        str(rollout.id),
        "-r",
        "launch",
        "--override-gates",
        "--as",
        "ada@example.com",
    ]
    result = runner.invoke(args=as_ada)
    assert result.exit_code == 0 and "stage 1" in result.output, result.output


def test_a_segment_is_excluded_and_included_again_from_the_shell_after_completion(
    app: Any, session: Session, make_rollout: Any
) -> None:
    from campaigns.rollout.machine import transition
    from models import RolloutAudit, Segment

    segment = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
    session.add(segment)
    session.commit()
    rollout = make_rollout(stages=[{"kind": "percent", "exposure_bp": 100}], report_segments=[segment.id])
    transition(session, rollout, "start", "mia", "go")
    transition(session, rollout, "advance", "mia", "done", override_gates=True)
    session.commit()
    assert rollout.state == "completed"
    runner = app.test_cli_runner()
    ids = [str(rollout.id), str(segment.id)]
    result = runner.invoke(args=["rollout", "exclude-segment", *ids, "-r", "harmed in France"])
    assert result.exit_code == 0 and f"[{segment.id}]" in result.output, result.output
    result = runner.invoke(args=["rollout", "exclude-segment", *ids, "-r", "again"])
    assert result.exit_code != 0 and "already" in result.output
    result = runner.invoke(args=["rollout", "include-segment", *ids, "-r", "fixed"])
    assert result.exit_code == 0 and "[]" in result.output
    session.expire_all()
    actions = [a for (a,) in session.query(RolloutAudit.action).filter(RolloutAudit.rollout_id == rollout.id)]
    assert actions[-2:] == ["exclude_segment", "include_segment"]


def test_create_from_the_shell_sizes_the_plan_and_says_what_it_can_learn(
    app: Any, session: Session, tmp_path: Any
) -> None:
    """`mailramp rollout create`: the same creation path and schema as POST /rollouts, the plan and
    the holdout sized to the audience, the forecast in words on the terminal."""
    from campaigns.rollout.service import get_rollout

    runner = app.test_cli_runner()
    result = runner.invoke(args=["rollout", "create", "Weekly picks", "--series", "weekly"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rollout ") and "created (draft, holdout " in result.output
    rollout_id = int(result.output.split()[1])
    created = get_rollout(session, rollout_id)
    assert created.state == "draft" and created.series == "weekly" and created.stages
    assert "this rollout" in result.output  # the forecast's words, whatever the audience
    result = runner.invoke(args=["rollout", "create", "Flash sale", "--holdout-percent", "10"])
    assert result.exit_code == 0, result.output
    assert get_rollout(session, int(result.output.split()[1])).holdout_bp == 1000
    # bad input: the API's schema names the field; nothing is created
    settings = tmp_path / "rollout.json"
    settings.write_text('{"approval_from_bp": 20000}')
    result = runner.invoke(args=["rollout", "create", "Bad", "--settings", str(settings)])
    assert result.exit_code != 0 and "approval_from_bp" in result.output, result.output
    settings.write_text("[1, 2]")
    result = runner.invoke(args=["rollout", "create", "Bad", "--settings", str(settings)])
    assert result.exit_code != 0 and "must be a JSON object" in result.output
    result = runner.invoke(args=["rollout", "create", "Bad", "--holdout-percent", "80"])
    assert result.exit_code != 0 and "holdout-percent" in result.output
    # a viewer may not create one
    with app.test_request_context():
        from app.extensions import db

        create_user("vic@example.com", "pw-long-enough-123", Role.viewer)
        db().commit()
    result = runner.invoke(args=["rollout", "create", "Nope", "--as", "vic@example.com"])
    assert result.exit_code != 0 and "needs the marketer role" in result.output
    from models import Rollout

    assert session.query(Rollout).filter(Rollout.name.in_(["Bad", "Nope"])).count() == 0
