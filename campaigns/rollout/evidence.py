"""What a stage has gathered, read from the send ledger and events (for gates and audit snapshots)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError
from campaigns.rollout.gates import GateObservation
from campaigns.rollout.stages import SHADOW_KINDS, parse_plan
from models import Event, Rollout, Send, ShadowRender, utcnow

COUNTED_EVENTS = ("open", "click", "conversion")


def observe(session: Session, rollout: Rollout, now: datetime | None = None) -> GateObservation:
    """Recipients per arm and human events in the rollout's current stage, matured only: a recipient
    counts once the primary metric's maturation window has passed since its send.

    In a shadow or dark stage nobody is sent treatment, so the would-be treatment contacts whose AI
    content was computed (shadow renders) count as the treatment arm.
    """
    from campaigns.decisions.policy import METRIC_DEFS, parse_config

    now = now or utcnow()
    index = rollout.stage_index
    try:
        config = parse_config(rollout.primary_metric, rollout.guardrails)
        window = config.policy.window(METRIC_DEFS[config.primary_metric].numerator)
    except InputError:
        window = 72.0
    ripe = Send.sent_at <= now - timedelta(hours=window)
    sent = (Send.rollout_id == rollout.id) & (Send.stage_index == index) & (Send.state == "sent") & ripe
    counts = {
        str(arm): int(n)
        for arm, n in session.execute(sa.select(Send.arm, sa.func.count()).where(sent).group_by(Send.arm))
    }
    counts["control"] = counts.get("control", 0) + counts.pop("holdout", 0)
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
        .join(Send, Send.id == Event.send_id)
        .where(
            Event.rollout_id == rollout.id,
            Event.stage_index == index,
            Event.kind.in_(COUNTED_EVENTS),
            Event.machine.is_(False),
            ripe,
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
