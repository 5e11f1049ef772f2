"""What a stage has gathered, read from the send ledger and events (for gates and audit snapshots)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.rollout.gates import GateObservation
from campaigns.rollout.stages import SHADOW_KINDS, parse_plan
from models import Event, Rollout, Send, ShadowRender

COUNTED_EVENTS = ("open", "click", "conversion")


def observe(session: Session, rollout: Rollout) -> GateObservation:
    """Recipients per arm and human events in the rollout's current stage.

    In a shadow or dark stage nobody is sent treatment, so the would-be treatment contacts whose AI
    content was computed (shadow renders) count as the treatment arm.
    """
    index = rollout.stage_index
    sent = (Send.rollout_id == rollout.id) & (Send.stage_index == index) & (Send.state == "sent")
    counts = {
        str(arm): int(n)
        for arm, n in session.execute(sa.select(Send.arm, sa.func.count()).where(sent).group_by(Send.arm))
    }
    stages = parse_plan(list(rollout.stages or []))
    if 0 <= index < len(stages) and stages[index].kind in SHADOW_KINDS:
        counts["treatment"] = int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(ShadowRender)
                .join(Send, Send.id == ShadowRender.send_id)
                .where(sent, ShadowRender.error == "")
            )
            or 0
        )
    events = session.scalar(
        sa.select(sa.func.count())
        .select_from(Event)
        .where(
            Event.rollout_id == rollout.id,
            Event.stage_index == index,
            Event.kind.in_(COUNTED_EVENTS),
            Event.machine.is_(False),
        )
    )
    return GateObservation(
        recipients_per_arm=counts, events=int(events or 0), stage_started_at=rollout.stage_started_at
    )


def rollout_snapshot(rollout: Rollout) -> dict[str, Any]:
    """The settings an audit row freezes next to the evidence."""
    return {
        "state": rollout.state,
        "stage_index": rollout.stage_index,
        "killed": rollout.killed,
        "holdout_bp": rollout.holdout_bp,
        "salt": rollout.salt,
        "model_version_id": rollout.model_version_id,
    }
