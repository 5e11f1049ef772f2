"""Rollouts in a real database for the state machine, approval, kill switch and API tests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from campaigns.rollout.changes import create_rollout
from models import Rollout

PLAN = [
    {"name": "shadow", "kind": "shadow", "exposure_bp": 1000},
    {"name": "internal", "kind": "internal", "exposure_bp": 0},
    {"name": "5%", "kind": "percent", "exposure_bp": 500},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000},
]


@pytest.fixture()
def make_rollout(session: Session) -> Any:
    def make(**settings: Any) -> Rollout:
        settings.setdefault("stages", PLAN)
        settings.setdefault("plan", "manual")  # a gate-less plan: chosen explicitly
        rollout = create_rollout(session, settings.pop("name", "spring"), "owner@example.com", **settings)
        session.commit()
        return rollout

    return make
