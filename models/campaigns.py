"""Campaigns, their waves, and the links a click may be redirected to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id"), default=None)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("templates.id"))
    rollout_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rollouts.id"), default=None, index=True)
    subject: Mapped[str] = mapped_column(sa.String(500), default="")  # empty: the template's subject
    from_email: Mapped[str] = mapped_column(sa.String(320))
    from_name: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="draft", index=True)
    # schedule: now (send_at null, cron null), at a time (send_at), recurring (cron, in `timezone`)
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    cron: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    wave_size: Mapped[int | None] = mapped_column(default=None)  # contacts per scheduled wave; null: all
    # "campaign", or "flow_step": the hidden campaign a flow's send step sends through (models.flows)
    kind: Mapped[str] = mapped_column(sa.String(20), default="campaign", server_default="campaign")
    series: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    # filters on the AI block's recommendations: categories, price range, at most N per category
    recommendation_rules: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sa.text("'{}'"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id"), default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)  # recurring: last occurrence
    created_by: Mapped[str] = mapped_column(sa.String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignLink(Base):
    """A click destination: tracking tokens carry its id, never a URL."""

    __tablename__ = "campaign_links"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "url"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(2000))


class Wave(Base):
    __tablename__ = "waves"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    limit: Mapped[int | None] = mapped_column(default=None)  # null: the rest of the audience
    status: Mapped[str] = mapped_column(sa.String(20), default="planning")  # planning|sending|done|failed
    planned: Mapped[int] = mapped_column(default=0)
    batches: Mapped[int] = mapped_column(default=0)
    stage_index: Mapped[int | None] = mapped_column(default=None)
    exposure_bp: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # AI waves: set when the wave's contacts are scored; its batches wait for it (never a silent fallback)
    scored_at: Mapped[datetime | None] = mapped_column(default=None)
    scoring_error: Mapped[str] = mapped_column(sa.Text, default="")
