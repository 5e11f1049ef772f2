"""Audited settings changes: plan edits, the fixed holdout, re-randomizing, blue-green model switch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError, StateError
from campaigns.rollout.assignment import ContactFrame, assign
from campaigns.rollout.changes import rerandomize, switch_back, switch_model, update_rollout
from campaigns.rollout.machine import RoleError, transition
from campaigns.rollout.service import load_spec
from models import ModelVersion, Role, RolloutAudit


def test_two_rollouts_get_different_salts(make_rollout: Any) -> None:
    assert make_rollout().salt != make_rollout(name="other").salt


def test_plan_edits_keep_the_path_taken(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    for action in ("start", "advance"):
        transition(session, rollout, action, "mia", "go", override_gates=True)
    plan = list(rollout.stages)
    with pytest.raises(StateError, match="already run"):
        update_rollout(
            session, rollout, "mia", "tweak", {"stages": [{**plan[0], "exposure_bp": 2000}, *plan[1:]]}
        )
    new_plan = [*plan[:3], {"kind": "percent", "exposure_bp": 2500, "name": "25%"}, *plan[3:]]
    row = update_rollout(session, rollout, "mia", "add a 25% ring", {"stages": new_plan})
    assert [s["exposure_bp"] for s in rollout.stages] == [1000, 0, 500, 2500, 5000, 10_000]
    assert row.action == "edit" and "stages" in row.evidence["changes"]
    with pytest.raises(InputError) as err:
        update_rollout(
            session, rollout, "mia", "bad", {"stages": [*new_plan, {"kind": "percent", "exposure_bp": 100}]}
        )
    assert err.value.where == "stages[6].exposure_bp"


def test_holdout_is_fixed_once_started_and_governance_needs_an_approver(
    session: Session, make_rollout: Any
) -> None:
    rollout = make_rollout(holdout_bp=500)
    update_rollout(session, rollout, "mia", "bigger holdout", {"holdout_bp": 1000}, role=Role.marketer)
    transition(session, rollout, "start", "mia", "go")
    with pytest.raises(StateError, match="holdout is fixed"):
        update_rollout(session, rollout, "mia", "smaller", {"holdout_bp": 0})
    with pytest.raises(RoleError):
        update_rollout(
            session, rollout, "mia", "no four eyes", {"approval_from_bp": None}, role=Role.marketer
        )
    update_rollout(session, rollout, "ada", "stricter", {"approval_from_bp": 1000}, role=Role.approver)
    freeze = [{"start": "2024-11-25T00:00:00+00:00", "end": "2024-12-02T00:00:00+00:00", "why": "peak"}]
    update_rollout(session, rollout, "mia", "peak week", {"freeze_windows": freeze}, role=Role.marketer)
    with pytest.raises(RoleError):
        update_rollout(session, rollout, "mia", "unfreeze", {"freeze_windows": []}, role=Role.marketer)
    with pytest.raises(InputError):
        update_rollout(session, rollout, "mia", "x", {"salt": "mine"})


def test_rerandomize_is_explicit_and_audited(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    transition(session, rollout, "start", "mia", "go")
    with pytest.raises(StateError, match="draft or paused"):
        rerandomize(session, rollout, "mia", "reshuffle")
    transition(session, rollout, "pause", "mia", "hold")
    with pytest.raises(RoleError):
        rerandomize(session, rollout, "mia", "reshuffle", role=Role.marketer)
    old = rollout.salt
    frame = ContactFrame(ids=np.arange(1, 2001))
    before = assign(load_spec(session, rollout.id), frame).buckets
    row = rerandomize(session, rollout, "ada", "imbalanced pre-period", role=Role.approver)
    session.commit()
    after = assign(load_spec(session, rollout.id), frame).buckets
    assert rollout.salt != old and row.evidence["salt"] == {"from": old, "to": rollout.salt}
    assert (before != after).mean() > 0.99


def test_blue_green_switch_and_instant_switch_back(session: Session, make_rollout: Any) -> None:
    blue = ModelVersion(name="blue", kind="popularity", status="ready")
    green = ModelVersion(name="green", kind="ease", status="ready")
    broken = ModelVersion(name="broken", kind="ease", status="failed")
    session.add_all([blue, green, broken])
    session.flush()
    rollout = make_rollout(model_version_id=blue.id)
    with pytest.raises(RoleError):
        switch_model(session, rollout, green.id, "mia", "try green", role=Role.marketer)
    with pytest.raises(StateError, match="failed, not ready"):
        switch_model(session, rollout, broken.id, "ada", "try broken")
    switch_model(session, rollout, green.id, "ada", "green wins offline", role=Role.approver)
    session.commit()
    assert load_spec(session, rollout.id).model_version_id == green.id
    row = switch_back(session, rollout, "mia", "green renders slowly", role=Role.marketer)
    session.commit()
    assert load_spec(session, rollout.id).model_version_id == blue.id
    assert row.evidence["model_version_id"] == {"from": green.id, "to": blue.id}
    actions = session.scalars(
        sa.select(RolloutAudit.action).where(RolloutAudit.rollout_id == rollout.id)
    ).all()
    assert actions == ["create", "switch_model", "switch_back"]
