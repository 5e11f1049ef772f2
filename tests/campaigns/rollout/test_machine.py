"""The state machine: valid paths, invalid transitions, audit rows, gates, freeze windows, kill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError, StateError
from campaigns.rollout.machine import RoleError, transition
from campaigns.rollout.service import is_killed, load_spec
from models import Role, RolloutAudit
from tests.factories import add_matured_sends

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _audit(session: Session, rollout_id: int) -> list[RolloutAudit]:
    return list(
        session.scalars(
            sa.select(RolloutAudit).where(RolloutAudit.rollout_id == rollout_id).order_by(RolloutAudit.id)
        )
    )


def test_full_path_is_audited(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    steps = [
        ("start", "shadow", 0),
        ("advance", "ramping", 1),
        ("pause", "paused", 1),
        ("resume", "ramping", 1),
        ("advance", "ramping", 2),
        ("advance", "ramping", 3),
        ("advance", "ramping", 4),
        ("advance", "completed", 4),
    ]
    for i, (action, state, stage) in enumerate(steps):
        if action == "advance":
            add_matured_sends(session, rollout.id, sent_at=NOW - timedelta(days=4))
        transition(
            session,
            rollout,
            action,
            "ana@example.com",
            f"step {i}",
            {"note": i},
            now=NOW + timedelta(hours=i),
            override_gates=state == "completed",  # a few sends: completing is "without evidence"
        )
        session.commit()
        assert (rollout.state, rollout.stage_index) == (state, stage)
    rows = _audit(session, rollout.id)
    assert [r.action for r in rows] == ["create"] + [a for a, _, _ in steps]
    advance = rows[2]
    assert (advance.actor, advance.from_state, advance.to_state, advance.from_stage, advance.to_stage) == (
        "ana@example.com",
        "shadow",
        "ramping",
        0,
        1,
    )
    assert advance.reason == "step 1" and advance.evidence["note"] == 1
    assert advance.evidence["snapshot"]["gates"]["unmet"] == []
    assert advance.evidence["snapshot"]["before"]["stage_index"] == 0
    assert rows[-1].to_state == "completed" and rows[-1].evidence["snapshot"]["exposure_bp"] == {
        "from": 10_000,
        "to": 10_000,
    }
    assert rows[-1].reason == "completed without evidence: step 7"
    assert rows[-1].evidence["snapshot"]["completed_without_evidence"] is True
    assert rollout.stage_started_at == NOW + timedelta(hours=6)  # entering stage 4; completing keeps it


@pytest.mark.parametrize(
    ("state_path", "action"),
    [
        ([], "advance"),  # draft cannot advance
        ([], "resume"),
        ([], "rollback"),
        (["start"], "start"),
        (["start"], "resume"),
        (["start", "pause"], "advance"),
        (["start", "pause"], "pause"),
        (["start", "rollback"], "resume"),
        (["start", "rollback"], "advance"),
        (["start"], "unkill"),  # not killed
        ([], "explode"),
    ],
)
def test_invalid_transitions_raise_and_write_nothing(
    session: Session, make_rollout: Any, state_path: list[str], action: str
) -> None:
    rollout = make_rollout()
    for step in state_path:
        transition(session, rollout, step, "ana", "setup")
    session.commit()
    before = len(_audit(session, rollout.id))
    state = rollout.state
    with pytest.raises(StateError) as err:
        transition(session, rollout, action, "ana", "try")
    session.rollback()
    assert state in str(err.value) or "unknown action" in str(err.value) or "not killed" in str(err.value)
    assert len(_audit(session, rollout.id)) == before
    assert rollout.state == state


def test_actor_and_reason_are_required(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    with pytest.raises(InputError) as err:
        transition(session, rollout, "start", "ana", "  ")
    assert err.value.where == "reason"
    with pytest.raises(InputError):
        transition(session, rollout, "start", "", "go")


def test_roles(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    with pytest.raises(RoleError):
        transition(session, rollout, "start", "val", "go", role=Role.viewer)
    transition(session, rollout, "start", "mia", "go", role=Role.marketer)
    transition(session, rollout, "kill", "mia", "stop", role=Role.marketer)
    with pytest.raises(RoleError):
        transition(session, rollout, "unkill", "mia", "back", role=Role.marketer)
    transition(session, rollout, "unkill", "ada", "back", role=Role.approver)
    assert not rollout.killed


def test_freeze_window_blocks_advances_only(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout(
        freeze_windows=[
            {"start": "2024-11-25T00:00:00Z", "end": "2024-12-02T00:00:00Z", "why": "Black Friday week"}
        ]
    )
    inside, after = datetime(2024, 11, 29, tzinfo=UTC), datetime(2024, 12, 2, tzinfo=UTC)
    transition(session, rollout, "start", "ana", "go", now=inside - timedelta(days=10))
    with pytest.raises(StateError, match=r"freeze window.*Black Friday"):
        transition(session, rollout, "advance", "ana", "more", now=inside)
    transition(session, rollout, "pause", "ana", "hold", now=inside)
    transition(session, rollout, "resume", "ana", "go on", now=inside)
    transition(session, rollout, "kill", "ana", "stop", now=inside)
    transition(session, rollout, "unkill", "ana", "ok", now=inside)
    add_matured_sends(session, rollout.id, sent_at=after - timedelta(days=4))
    transition(session, rollout, "advance", "ana", "more", now=after)
    assert rollout.stage_index == 1


def test_gates_block_advance_unless_overridden(session: Session, make_rollout: Any) -> None:
    plan = [
        {
            "kind": "percent",
            "exposure_bp": 100,
            "gates": {"min_recipients_per_arm": 10, "min_events": 5, "min_duration_hours": 24},
        },
        {"kind": "percent", "exposure_bp": 1000},
    ]
    rollout = make_rollout(stages=plan)
    transition(session, rollout, "start", "ana", "go", now=NOW)
    with pytest.raises(StateError) as err:
        transition(session, rollout, "advance", "ana", "more", now=NOW + timedelta(hours=2))
    message = str(err.value)
    assert "treatment has 0 recipients, the stage needs 10" in message
    assert "0 events, the stage needs 5" in message
    assert "2.0 h in the stage, it needs 24 h" in message
    row = transition(
        session, rollout, "advance", "ana", "launch day", now=NOW + timedelta(hours=2), override_gates=True
    )
    assert row.evidence["snapshot"]["gates"]["overridden"] is True
    assert len(row.evidence["snapshot"]["gates"]["unmet"]) == 4  # two arms, events, duration


def test_kill_switch_is_read_fresh_and_fails_closed(session: Session, make_rollout: Any, app: Any) -> None:
    from campaigns.rollout.service import kill

    rollout = make_rollout()
    transition(session, rollout, "start", "ana", "go")
    session.commit()
    other = app.extensions["mailramp"].session_factory()  # a batch running in another process
    assert not is_killed(other, rollout.id)
    kill(session, rollout.id, "ops@example.com", "complaints")  # commits
    assert is_killed(other, rollout.id)
    assert load_spec(other, rollout.id).killed
    with pytest.raises(StateError, match="killed"):
        transition(session, rollout, "advance", "ana", "more")
    session.rollback()
    rows = _audit(session, rollout.id)
    assert (
        rows[-1].action == "kill" and rows[-1].actor == "ops@example.com" and rows[-1].reason == "complaints"
    )
    other.close()


def test_rollback_is_terminal_and_counts_as_killed(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    transition(session, rollout, "start", "ana", "go")
    transition(session, rollout, "rollback", "evaluator", "guardrail: unsubscribe rate", {"decision_id": 4})
    session.commit()
    assert is_killed(session, rollout.id)
    assert is_killed(session, 999_999)  # a missing rollout fails closed too
    for action in ("start", "advance", "pause", "resume", "unkill"):
        with pytest.raises(StateError):
            transition(session, rollout, action, "ana", "try")


def test_approval_threshold_needs_an_approval(session: Session, make_rollout: Any) -> None:
    from campaigns.rollout.machine import ApprovalRequired

    rollout = make_rollout(approval_from_bp=2500)
    for action in ("start", "advance", "advance"):  # shadow, internal, 5%: below the threshold
        transition(session, rollout, action, "ana", "go", override_gates=True)
    with pytest.raises(ApprovalRequired) as err:
        transition(session, rollout, "advance", "ana", "to 50%", override_gates=True)
    assert err.value.target_stage == 3 and rollout.stage_index == 2
