"""A campaign's engagement over time per arm, and its results per report segment.

`recipients(session, campaign_id)` reads each sent recipient once (arm, send time, first human open,
first human click, conversion, revenue, report-segment labels); `over_time` turns them into the
cumulative share of recipients who opened, clicked and converted by each hour since their own send;
`by_segment` into per-arm results for each report segment. Both are plain numbers in, frozen
dataclasses out; the UI adds the intervals and draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Send

OUTCOMES = ("opened", "clicked", "converted")
HOURS = (1, 2, 3, 4, 6, 8, 12, 18, 24, 36, 48, 72, 96, 120, 168, 240, 336)
MAX_RECIPIENTS = 500_000  # a page reads at most this many rows


@dataclass(frozen=True)
class Recipient:
    arm: str
    sent_at: datetime
    opened: float | None  # hours from the send to the first human open; None: not (yet)
    clicked: float | None
    converted: float | None
    revenue: float
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Curve:
    arm: str
    n: int
    hours: tuple[float, ...]
    shares: dict[str, tuple[float, ...]]  # outcome -> share of the arm's recipients by each hour


@dataclass(frozen=True)
class SegmentResult:
    segment: str
    arm: str
    sent: int
    opened: int
    clicked: int
    converted: int
    revenue: float

    def rate(self, outcome: str) -> float | None:
        return getattr(self, outcome) / self.sent if self.sent else None


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _hours(start: datetime, moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return max((_aware(moment) - start).total_seconds() / 3600, 0.0)


def recipients(session: Session, campaign_id: int) -> list[Recipient]:
    rows = session.execute(
        sa.select(Send.arm, Send.sent_at, Send.opened_at, Send.clicked_at, Send.converted_at, Send.revenue,
                  Send.segments)
        .where(Send.campaign_id == campaign_id, Send.state == "sent", Send.sent_at.is_not(None))
        .limit(MAX_RECIPIENTS)
    )  # fmt: skip
    return [
        Recipient(
            str(arm),
            _aware(sent),
            _hours(_aware(sent), opened),
            _hours(_aware(sent), clicked),
            _hours(_aware(sent), converted),
            float(revenue or 0.0),
            tuple(str(s) for s in (segments or ())),
        )
        for arm, sent, opened, clicked, converted, revenue, segments in rows
    ]


def horizon(people: Sequence[Recipient], now: datetime) -> tuple[float, ...]:
    """The hours to plot: those of HOURS up to the age of the oldest send, and no further than the
    first of them after the latest event (the curves are flat beyond)."""
    if not people:
        return ()
    oldest = min(p.sent_at for p in people)
    age = max((now - oldest).total_seconds() / 3600, 0.0)
    latest = max(
        (t for p in people for t in (p.opened, p.clicked, p.converted) if t is not None), default=0.0
    )
    flat_after = next((h for h in HOURS if h >= latest), HOURS[-1])
    return tuple(h for h in HOURS if h <= max(min(age, flat_after), HOURS[0]))


def over_time(people: Sequence[Recipient], hours: Sequence[float]) -> list[Curve]:
    """Per arm: the share who opened (clicked, converted) within h hours of their send, for each h."""
    curves = []
    for arm in sorted({p.arm for p in people}):
        mine = [p for p in people if p.arm == arm]
        shares = {
            outcome: tuple(
                sum(1 for p in mine if (t := getattr(p, outcome)) is not None and t <= h) / len(mine)
                for h in hours
            )
            for outcome in OUTCOMES
        }
        curves.append(Curve(arm=arm, n=len(mine), hours=tuple(hours), shares=shares))
    return curves


def by_segment(people: Sequence[Recipient]) -> list[SegmentResult]:
    """Per report segment (the labels stored with each send) and arm."""
    totals: dict[tuple[str, str], list[float]] = {}
    for p in people:
        for segment in p.segments:
            row = totals.setdefault((segment, p.arm), [0, 0, 0, 0, 0.0])
            row[0] += 1
            row[1] += p.opened is not None
            row[2] += p.clicked is not None
            row[3] += p.converted is not None
            row[4] += p.revenue
    return [
        SegmentResult(segment, arm, int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4]))
        for (segment, arm), r in sorted(totals.items())
    ]
