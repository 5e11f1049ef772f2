"""Excluding or including a report segment by hand: the same move the evaluator makes on an
"exclude segment" verdict, available in every state (completed and rolled back included).

The change goes through the state machine (`campaigns.rollout.machine.set_segment`, audited), is
stored as a decision (outcome ``exclude_segment`` or ``include_segment``, applied, with who and why)
and queued to the webhooks in the same transaction; the caller commits, then enqueues the deliveries
(`campaigns.ops.alerts.enqueue_for_decision`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from campaigns.ops import alerts
from models import Decision, Role, Rollout, RolloutAudit, utcnow


def set_segment_by_hand(
    session: Session,
    rollout: Rollout,
    segment_id: int,
    action: str,
    actor: str,
    reason: str,
    *,
    role: Role | None = None,
    now: datetime | None = None,
) -> tuple[RolloutAudit, Decision]:
    from campaigns.rollout.machine import set_segment

    now = now or utcnow()
    audit = set_segment(
        session, rollout, segment_id, action, actor, reason, {"by_hand": True}, role=role, now=now
    )
    decision = Decision(
        rollout_id=rollout.id,
        at=now,
        stage_index=rollout.stage_index,
        outcome=action,
        reasons=[reason],
        evidence={"segment_id": segment_id, "actor": actor, "by_hand": True, "audit_id": audit.id,
                  "application": {"status": "applied", "audit_id": audit.id}},
        applied=True,
    )  # fmt: skip
    session.add(decision)
    session.flush()
    alerts.queue_decision(session, rollout, decision)
    return audit, decision
