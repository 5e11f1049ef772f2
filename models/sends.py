"""The send ledger: one row per (campaign, contact), and per-recipient outcomes for the statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

SEND_STATES = (
    "queued",
    "sending",
    "sent",
    "failed",
    "skipped",
)  # skipped: unsubscribed or suppressed before its turn
ARMS = ("treatment", "control", "holdout", "excluded")


class Send(Base):
    __tablename__ = "sends"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "contact_id"),
        sa.Index("ix_sends_campaign_state", "campaign_id", "state"),
        sa.Index("ix_sends_rollout_arm", "rollout_id", "arm"),
        # frequency caps count a contact's recent sends (campaigns.sending.cap_claims)
        sa.Index("ix_sends_contact_state_sent", "contact_id", "state", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    wave_id: Mapped[int | None] = mapped_column(sa.ForeignKey("waves.id"), default=None, index=True)
    batch: Mapped[int] = mapped_column(default=0)
    rollout_id: Mapped[int | None] = mapped_column(BigId, default=None)
    stage_index: Mapped[int | None] = mapped_column(default=None)
    arm: Mapped[str] = mapped_column(sa.String(12), default="control")
    bucket: Mapped[int | None] = mapped_column(default=None)
    # the rollout's report segments this contact was in when sent (labels for per-segment metrics)
    segments: Mapped[list[Any]] = mapped_column(default=list, server_default=sa.text("'[]'"))
    # treatment by allow-list or beta group, not by bucket: left out of the statistics
    forced: Mapped[bool] = mapped_column(default=False)
    content: Mapped[str] = mapped_column(sa.String(12), default="control")  # ai | control | fallback
    model_version_id: Mapped[int | None] = mapped_column(BigId, default=None)
    state: Mapped[str] = mapped_column(sa.String(10), default="queued")
    message_id: Mapped[str] = mapped_column(sa.String(300), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    render_ms: Mapped[float | None] = mapped_column(sa.Float, default=None)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # local-time delivery: not sent before this instant (the contact's chosen local hour)
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    # frequency caps: when this row passed the caps and quiet hours; a claimed row not yet sent
    # counts toward its contact's caps from this instant (campaigns.sending.cap_claims)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Per-recipient outcomes, set once by the ingest worker; the aggregates are built from these.
    opened_at: Mapped[datetime | None] = mapped_column(default=None)  # human opens only
    clicked_at: Mapped[datetime | None] = mapped_column(default=None)  # human clicks only
    converted_at: Mapped[datetime | None] = mapped_column(default=None)
    revenue: Mapped[float] = mapped_column(sa.Float, default=0.0)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)
    complained_at: Mapped[datetime | None] = mapped_column(default=None)
    bounced_at: Mapped[datetime | None] = mapped_column(default=None)
