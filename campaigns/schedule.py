"""Timed and recurring campaigns: which are due now. Claims are atomic UPDATEs, so two schedulers
running at once never start the same campaign or occurrence twice."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter
from sqlalchemy.orm import Session

from models import Campaign


def next_occurrence(cron: str, timezone: str, after: datetime) -> datetime:
    """The next cron time after `after`, read as wall-clock time in the campaign's timezone."""
    local = after.astimezone(ZoneInfo(timezone))
    nxt: datetime = croniter(cron, local).get_next(datetime)
    return nxt.astimezone(after.tzinfo)


def due_campaigns(session: Session, now: datetime) -> list[tuple[int, int | None]]:
    due: list[tuple[int, int | None]] = []
    timed = session.execute(
        sa.select(Campaign.id, Campaign.wave_size).where(
            Campaign.status == "scheduled", Campaign.cron.is_(None), Campaign.send_at <= now
        )
    ).all()
    for campaign_id, wave_size in timed:
        claimed = session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "scheduled")
            .values(status="sending")
        )
        if claimed.rowcount:  # type: ignore[attr-defined]
            due.append((campaign_id, wave_size))
    recurring = session.scalars(
        sa.select(Campaign).where(Campaign.status == "scheduled", Campaign.cron.is_not(None))
    ).all()
    for parent in recurring:
        assert parent.cron is not None
        base = parent.last_run_at or parent.send_at or parent.created_at
        occurrence = next_occurrence(parent.cron, parent.timezone, base)
        if occurrence > now:
            continue
        # After downtime, run the latest missed occurrence once, not every one that was missed.
        while (following := next_occurrence(parent.cron, parent.timezone, occurrence)) <= now:
            occurrence = following
        claim = sa.update(Campaign).where(Campaign.id == parent.id)
        claim = claim.where(
            Campaign.last_run_at.is_(None)
            if parent.last_run_at is None
            else Campaign.last_run_at == parent.last_run_at
        )
        if not session.execute(claim.values(last_run_at=occurrence)).rowcount:  # type: ignore[attr-defined]
            continue
        child = Campaign(
            name=f"{parent.name} · {occurrence.astimezone(ZoneInfo(parent.timezone)):%Y-%m-%d %H:%M}",
            segment_id=parent.segment_id,
            template_id=parent.template_id,
            rollout_id=parent.rollout_id,
            subject=parent.subject,
            from_email=parent.from_email,
            from_name=parent.from_name,
            status="sending",
            timezone=parent.timezone,
            wave_size=parent.wave_size,
            series=parent.series or f"campaign-{parent.id}",
            parent_id=parent.id,
            created_by=parent.created_by,
        )
        session.add(child)
        session.flush()
        due.append((child.id, parent.wave_size))
    session.commit()
    return due
