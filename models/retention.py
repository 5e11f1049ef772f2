"""Results of sends that are no longer stored (retention, erasure), folded per campaign and arm, so
a campaign's results read the same after the rows are gone."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

FOLDED_COUNTS = (
    "planned",
    "sent",
    "failed",
    "skipped",
    "pending",
    "bounces",
    "opens",
    "machine_opens",
    "clicks",
    "bot_clicks",
    "conversions",
    "unsubscribes",
    "complaints",
)


class FoldedResult(Base):
    __tablename__ = "folded_results"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "arm"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    arm: Mapped[str] = mapped_column(sa.String(12))
    planned: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    pending: Mapped[int] = mapped_column(default=0)
    bounces: Mapped[int] = mapped_column(default=0)
    opens: Mapped[int] = mapped_column(default=0)
    machine_opens: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    bot_clicks: Mapped[int] = mapped_column(default=0)
    conversions: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[float] = mapped_column(sa.Float, default=0.0)
    unsubscribes: Mapped[int] = mapped_column(default=0)
    complaints: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
