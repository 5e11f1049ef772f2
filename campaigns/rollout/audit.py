"""The append-only audit log of a rollout: every transition and every audited change writes one row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError
from models import Rollout, RolloutAudit, utcnow


def require_words(actor: str, reason: str) -> tuple[str, str]:
    """Every audited action names who did it and why."""
    if not isinstance(actor, str) or not actor.strip():
        raise InputError("an audited action needs an actor", where="actor")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("say why: an audited action needs a reason", where="reason")
    return actor.strip(), reason.strip()


def record(
    session: Session,
    rollout: Rollout,
    action: str,
    actor: str,
    reason: str,
    *,
    from_state: str,
    to_state: str,
    from_stage: int | None,
    to_stage: int | None,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RolloutAudit:
    row = RolloutAudit(
        rollout_id=rollout.id,
        at=now or utcnow(),
        actor=actor,
        action=action,
        from_state=from_state,
        to_state=to_state,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        evidence=evidence or {},
    )
    session.add(row)
    session.flush()  # later refreshes (row locks) must see this change, not the stored one
    return row


def record_in_place(
    session: Session,
    rollout: Rollout,
    action: str,
    actor: str,
    reason: str,
    *,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RolloutAudit:
    """Record a change that leaves the rollout's state and stage as they are (an edit, a segment
    moved, a model switched, an approval asked for or refused)."""
    return record(
        session,
        rollout,
        action,
        actor,
        reason,
        from_state=rollout.state,
        to_state=rollout.state,
        from_stage=rollout.stage_index,
        to_stage=rollout.stage_index,
        evidence=evidence,
        now=now,
    )


def history(session: Session, rollout_id: int, limit: int | None = None) -> list[RolloutAudit]:
    """Newest first."""
    query = (
        sa.select(RolloutAudit)
        .where(RolloutAudit.rollout_id == rollout_id)
        .order_by(RolloutAudit.at.desc(), RolloutAudit.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def audit_to_json(row: RolloutAudit) -> dict[str, Any]:
    return {
        "id": row.id,
        "rollout_id": row.rollout_id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "from_stage": row.from_stage,
        "to_stage": row.to_stage,
        "reason": row.reason,
        "evidence": row.evidence,
    }
