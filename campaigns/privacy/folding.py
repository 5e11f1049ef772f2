"""Fold sends into per-campaign, per-arm counts before they are deleted (retention, erasure).

`campaigns.reports.results.campaign_results` adds these counts to what the stored sends give, so a campaign
reads the same before and after. The rollout aggregates (`arm_metrics`) are never touched: they hold
no per-contact rows, and decisions read them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Event, FoldedResult, Send
from models.db import dialect_insert
from models.retention import FOLDED_COUNTS


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def send_outcomes() -> list[sa.ColumnElement[Any]]:
    """The outcome counts of a group of sends, labelled by their names in ArmResult (and in the
    folded results, which keep them for sends no longer stored)."""
    return [
        sa.func.count().label("planned"),
        _count(Send.state == "sent").label("sent"),
        _count(Send.state == "failed").label("failed"),
        _count(Send.state == "skipped").label("skipped"),
        _count(Send.state.in_(("queued", "sending"))).label("pending"),
        _count(Send.bounced_at.is_not(None)).label("bounces"),
        _count(Send.opened_at.is_not(None)).label("opens"),
        _count(Send.clicked_at.is_not(None)).label("clicks"),
        _count(Send.converted_at.is_not(None)).label("conversions"),
        _count(Send.unsubscribed_at.is_not(None)).label("unsubscribes"),
        _count(Send.complained_at.is_not(None)).label("complaints"),
        sa.func.coalesce(sa.func.sum(Send.revenue), 0.0).label("revenue"),
    ]


def fold_sends(session: Session, send_ids: sa.Select[Any]) -> int:
    """Add the outcomes of the sends selected by `send_ids` (a SELECT of Send.id) to the folded
    results, including machine opens and bot clicks from their events; returns sends folded."""
    rows = session.execute(
        sa.select(Send.campaign_id, Send.arm, *send_outcomes())
        .where(Send.id.in_(send_ids))
        .group_by(Send.campaign_id, Send.arm)
    ).all()
    totals: dict[tuple[int, str], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(FOLDED_COUNTS, 0))
    folded = 0
    for row in rows:
        outcome = dict(row._mapping)
        counts = totals[(outcome.pop("campaign_id"), outcome.pop("arm"))]
        counts.update(outcome)
        counts["revenue"] = float(outcome["revenue"])
        folded += outcome["planned"]
    machine = sa.select(Event.campaign_id, Event.arm, Event.kind, sa.func.count(sa.distinct(Event.send_id)))
    for event_campaign, event_arm, kind, n in session.execute(
        machine.where(
            Event.send_id.in_(send_ids), Event.machine.is_(True), Event.kind.in_(("open", "click"))
        ).group_by(Event.campaign_id, Event.arm, Event.kind)
    ):
        if event_campaign is not None and event_arm is not None:
            totals[(event_campaign, event_arm)]["machine_opens" if kind == "open" else "bot_clicks"] += n
    add_folded(session, totals)
    return folded


def add_folded(session: Session, totals: dict[tuple[int, str], dict[str, Any]]) -> None:
    for (campaign_id, arm), counts in sorted(totals.items()):
        counts = {"revenue": 0.0, **counts}
        insert = dialect_insert(session)(FoldedResult).values(campaign_id=campaign_id, arm=arm, **counts)
        table = FoldedResult.__table__.c
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["campaign_id", "arm"],
                set_={key: table[key] + insert.excluded[key] for key in counts},
            )
        )


def folded_results(session: Session, campaign_id: int) -> dict[str, dict[str, Any]]:
    """arm -> the folded counts (and revenue) of a campaign."""
    out: dict[str, dict[str, Any]] = {}
    for row in session.scalars(sa.select(FoldedResult).where(FoldedResult.campaign_id == campaign_id)):
        out[row.arm] = {key: getattr(row, key) for key in (*FOLDED_COUNTS, "revenue")}
    return out
