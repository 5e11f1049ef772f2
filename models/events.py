"""Tracking events as stored by the ingest worker, and per-arm aggregates kept incrementally."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the cohort of rows counted before cohorts existed

EVENT_KINDS = ("delivered", "bounce", "open", "click", "conversion", "unsubscribe", "complaint")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_campaign_kind", "campaign_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(100), unique=True)  # from the raw event; replay-safe
    kind: Mapped[str] = mapped_column(sa.String(20))
    send_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sends.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(BigId, default=None)
    contact_id: Mapped[int | None] = mapped_column(BigId, default=None)
    rollout_id: Mapped[int | None] = mapped_column(BigId, default=None, index=True)
    arm: Mapped[str | None] = mapped_column(sa.String(12), default=None)
    stage_index: Mapped[int | None] = mapped_column(default=None)
    link_id: Mapped[int | None] = mapped_column(BigId, default=None)
    item_id: Mapped[int | None] = mapped_column(BigId, default=None)
    value: Mapped[float] = mapped_column(sa.Float, default=0.0)
    machine: Mapped[bool] = mapped_column(default=False)  # machine open or bot click
    reason: Mapped[str] = mapped_column(sa.String(100), default="")  # why it was classified so
    user_agent: Mapped[str] = mapped_column(sa.String(500), default="")
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArmMetric(Base):
    """Incremental sums per (campaign, stage, arm, segment, metric, cohort): n, sum and sum of squares.

    `segment` is "" for the whole arm. `cohort` is the hour (UTC, truncated) its recipients were sent
    in: events count in their recipient's cohort, so the sums of recipients matured for a metric
    (sent at least its window ago) are one indexed range over cohorts. Evaluations read these rows
    instead of scanning events.
    """

    __tablename__ = "arm_metrics"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "stage_index", "arm", "segment", "metric", "cohort"),
        sa.Index("ix_arm_metrics_rollout", "rollout_id", "stage_index"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int | None] = mapped_column(BigId, default=None)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    stage_index: Mapped[int] = mapped_column(default=-1)  # -1: no rollout stage
    arm: Mapped[str] = mapped_column(sa.String(12))
    segment: Mapped[str] = mapped_column(sa.String(100), default="")
    metric: Mapped[str] = mapped_column(sa.String(40))
    count: Mapped[float] = mapped_column(sa.Float, default=0.0)
    total: Mapped[float] = mapped_column(sa.Float, default=0.0)
    total_sq: Mapped[float] = mapped_column(sa.Float, default=0.0)
    cohort: Mapped[datetime] = mapped_column(default=EPOCH)  # send hour of its recipients
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # first contribution
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
