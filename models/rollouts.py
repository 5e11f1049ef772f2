"""Rollouts: the staged release of AI content, its audit log, approvals, decisions and shadow renders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.audit import make_append_only
from models.base import Base, BigId, utcnow

ROLLOUT_STATES = ("draft", "shadow", "ramping", "paused", "completed", "rolled_back")


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    series: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    salt: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(20), default="draft")
    stage_index: Mapped[int] = mapped_column(default=0)
    stage_started_at: Mapped[datetime | None] = mapped_column(default=None)  # when stage_index was entered
    # [{"name": "5%", "exposure_bp": 500, "kind": "percent", "gates": {...}}, ...]; see campaigns.rollout
    stages: Mapped[list[Any]] = mapped_column(default=list)
    # "staged" (gates on every stage, a comparison group) or "manual" (one-stage or gate-less, chosen)
    plan: Mapped[str] = mapped_column(sa.String(10), default="staged", server_default="staged")
    holdout_bp: Mapped[int] = mapped_column(default=0)  # permanent holdout, basis points
    targeting: Mapped[dict[str, Any]] = mapped_column(default=dict)
    primary_metric: Mapped[str] = mapped_column(sa.String(40), default="conversion_rate")
    guardrails: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision_mode: Mapped[str] = mapped_column(sa.String(20), default="auto")  # auto | approval
    approval_from_bp: Mapped[int | None] = mapped_column(default=None)  # advancing beyond needs approver
    # segments (ids) whose members' metrics are also kept apart, frozen on each send
    report_segments: Mapped[list[Any]] = mapped_column(default=list, server_default=sa.text("'[]'"))
    freeze_windows: Mapped[list[Any]] = mapped_column(default=list)  # [{"start": iso, "end": iso, "why"}]
    model_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_versions.id"), default=None)
    # blue-green: the version live before the last switch, so switching back is one step
    previous_model_version_id: Mapped[int | None] = mapped_column(BigId, default=None)
    killed: Mapped[bool] = mapped_column(default=False)
    killed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(sa.String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RolloutAudit(Base):
    """Append-only: the database refuses updates and deletes; no foreign key, so rows outlive their
    rollout."""

    __tablename__ = "rollout_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(BigId, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(320))
    action: Mapped[str] = mapped_column(sa.String(40))
    from_state: Mapped[str] = mapped_column(sa.String(20), default="")
    to_state: Mapped[str] = mapped_column(sa.String(20), default="")
    from_stage: Mapped[int | None] = mapped_column(default=None)
    to_stage: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)


make_append_only(RolloutAudit.__table__)  # type: ignore[arg-type]


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(sa.ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(sa.String(40))  # advance | rollback | ...
    target_stage: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")  # pending|approved|rejected
    requested_by: Mapped[str] = mapped_column(sa.String(320))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    decided_by: Mapped[str | None] = mapped_column(sa.String(320), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_id: Mapped[int | None] = mapped_column(sa.ForeignKey("decisions.id"), default=None)


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(sa.ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    stage_index: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(sa.String(20))  # hold | advance | rollback | pause
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    applied: Mapped[bool] = mapped_column(default=False)


class ShadowRender(Base):
    """What the AI path would have sent to a would-be treatment contact in shadow or dark-launch mode."""

    __tablename__ = "shadow_renders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    send_id: Mapped[int] = mapped_column(sa.ForeignKey("sends.id", ondelete="CASCADE"), unique=True)
    rollout_id: Mapped[int | None] = mapped_column(BigId, default=None, index=True)
    item_ids: Mapped[list[Any]] = mapped_column(default=list)
    content_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    latency_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceSetting(Base):
    """Workspace-wide settings edited under Settings, one JSON value per key (e.g. the default plan)."""

    __tablename__ = "workspace_settings"

    key: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str] = mapped_column(sa.String(320), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
