"""The send calendar: what goes out in a month, timed and recurring campaigns and waves already sent.

`month_entries(session, year, month, zone)` lists every send in the month as an `Entry` on the day
it happens in `zone` (the viewer's time zone): a campaign scheduled at a time, each occurrence of a
recurring campaign (its cron read in the campaign's own time zone, as the scheduler does), and each
wave already started. Cancelled campaigns are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.schedule import next_occurrence
from models import Campaign, Wave

MAX_PER_CAMPAIGN = 100  # occurrences of one recurring campaign in a month (every 8 hours, say)


@dataclass(frozen=True)
class Entry:
    day: date
    at: datetime  # UTC
    campaign_id: int
    name: str
    kind: str  # scheduled | recurring | sent
    status: str


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def month_entries(session: Session, year: int, month: int, zone: ZoneInfo) -> list[Entry]:
    start, end = month_bounds(year, month, zone)
    entries: list[Entry] = []

    def add(at: datetime, campaign: Campaign, kind: str) -> None:
        at = _aware(at)
        entries.append(
            Entry(at.astimezone(zone).date(), at, campaign.id, campaign.name, kind, campaign.status)
        )

    timed = session.scalars(
        sa.select(Campaign).where(
            Campaign.cron.is_(None), Campaign.send_at.is_not(None), Campaign.status.in_(("scheduled", "draft")),
            Campaign.send_at >= start, Campaign.send_at < end,
        )
    )  # fmt: skip
    for campaign in timed:
        add(campaign.send_at, campaign, "scheduled")  # type: ignore[arg-type]
    recurring = session.scalars(
        sa.select(Campaign).where(Campaign.cron.is_not(None), Campaign.status.notin_(("cancelled", "sent")))
    )
    now = datetime.now(UTC)
    for campaign in recurring:
        moment = max(start, now) - timedelta(seconds=1)
        for _ in range(MAX_PER_CAMPAIGN):
            try:
                moment = next_occurrence(str(campaign.cron), campaign.timezone or "UTC", moment)
            except Exception:  # a cron the scheduler would refuse too: nothing to show
                break
            if moment >= end:
                break
            add(moment, campaign, "recurring")
    waves = session.execute(
        sa.select(Wave.started_at, Wave.created_at, Campaign)
        .join(Campaign, Campaign.id == Wave.campaign_id)
        .where(sa.func.coalesce(Wave.started_at, Wave.created_at) >= start,
               sa.func.coalesce(Wave.started_at, Wave.created_at) < end)
    )  # fmt: skip
    for started, created, campaign in waves:
        add(started or created, campaign, "sent")
    return sorted(entries, key=lambda e: (e.at, e.name))


def month_to_open(session: Session, zone: ZoneInfo, now: datetime | None = None) -> tuple[int, int]:
    """The month the calendar opens on: this one when it has something, else the month of the
    latest wave (a workspace whose sends are all in the past, such as the demo's story)."""
    now = (now or datetime.now(UTC)).astimezone(zone)
    if month_entries(session, now.year, now.month, zone):
        return now.year, now.month
    latest = session.scalar(sa.select(sa.func.max(sa.func.coalesce(Wave.started_at, Wave.created_at))))
    if latest is None:
        return now.year, now.month
    local = _aware(latest).astimezone(zone)
    return local.year, local.month


def weeks(year: int, month: int) -> list[list[date | None]]:
    """The month as weeks from Monday; None outside the month."""
    first = date(year, month, 1)
    days = (date(year + (month == 12), month % 12 + 1, 1) - first).days
    cells: list[date | None] = [None] * first.weekday() + [first + timedelta(days=i) for i in range(days)]
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]
