"""Retention: raw events and sends older than their windows are folded into the campaign results and
deleted, by a daily job. Rollout aggregates (`arm_metrics`) are never touched, so decisions and the
statistics read the same; campaign results add the folded counts, so they read the same too.

Bounce and complaint records (`bounces`: the address, the reply) go after `bounces_days` (the job
uses the sends window, never shorter than the soft-bounce window that counts them); the suppression
list itself is kept: it is what stops a bounced address from being mailed again.

Rows of a live rollout (draft, shadow, ramping, paused) are kept whatever their age: its gates count
sends per stage and its stale-data check reads the latest events. A window of 0 days keeps forever.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.privacy import audit
from campaigns.privacy.folding import add_folded, fold_sends
from models import Bounce, Event, Rollout, Send, ShadowRender, utcnow

LIVE_STATES = ("draft", "shadow", "ramping", "paused")
CHUNK = 5000


@dataclass(frozen=True)
class RetentionReport:
    sends_deleted: int
    events_deleted: int
    events_cutoff: str | None
    sends_cutoff: str | None
    bounces_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _not_live(rollout_id: Any) -> sa.ColumnElement[bool]:
    live = sa.select(Rollout.id).where(Rollout.state.in_(LIVE_STATES))
    return sa.or_(rollout_id.is_(None), rollout_id.not_in(live))


def apply_retention(
    session: Session,
    *,
    events_days: int,
    sends_days: int,
    bounces_days: int = 0,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> RetentionReport:
    """Fold and delete, committing chunk by chunk (a long run never holds one huge transaction)."""
    now = now or utcnow()
    sends_cutoff = now - timedelta(days=sends_days) if sends_days > 0 else None
    events_cutoff = now - timedelta(days=events_days) if events_days > 0 else None
    sends_deleted, events_deleted = _expire_sends(session, sends_cutoff, chunk) if sends_cutoff else (0, 0)
    events_deleted += _expire_events(session, events_cutoff, chunk) if events_cutoff else 0
    bounces_deleted = 0
    if bounces_days > 0:
        bounces_cutoff = now - timedelta(days=bounces_days)
        bounces_deleted = int(
            session.execute(sa.delete(Bounce).where(Bounce.created_at < bounces_cutoff)).rowcount or 0  # type: ignore[attr-defined]
        )
        session.commit()
    report = RetentionReport(
        sends_deleted,
        events_deleted,
        events_cutoff.isoformat() if events_cutoff else None,
        sends_cutoff.isoformat() if sends_cutoff else None,
        bounces_deleted,
    )
    if sends_deleted or events_deleted or bounces_deleted:
        audit.record(session, "retention", "retention", summary="old sends and events folded and deleted",
                     after=report.as_dict())  # fmt: skip
        session.commit()
    return report


def _expire_sends(session: Session, cutoff: datetime, chunk: int) -> tuple[int, int]:
    """Sends (with their events and shadow renders) past the window; returns (sends, events) deleted."""
    deleted = events = 0
    while True:
        ids = list(
            session.scalars(
                sa.select(Send.id)
                .where(
                    Send.queued_at < cutoff,
                    Send.state.not_in(("queued", "sending")),
                    _not_live(Send.rollout_id),
                )
                .order_by(Send.id)
                .limit(chunk)
            )
        )
        if not ids:
            return deleted, events
        chosen = sa.select(Send.id).where(Send.id.in_(ids))
        fold_sends(session, chosen)
        session.execute(sa.delete(ShadowRender).where(ShadowRender.send_id.in_(ids)))
        events += int(session.execute(sa.delete(Event).where(Event.send_id.in_(ids))).rowcount or 0)  # type: ignore[attr-defined]
        session.execute(sa.delete(Send).where(Send.id.in_(ids)))
        session.commit()
        deleted += len(ids)


def _expire_events(session: Session, cutoff: datetime, chunk: int) -> int:
    """Campaign results read only machine opens and bot clicks from events (recipients with one);
    a recipient whose machine events of a kind all go is folded, one with newer ones stays counted
    live (and is folded when those go)."""
    deleted = 0
    while True:
        rows = session.execute(
            sa.select(Event.id, Event.send_id, Event.campaign_id, Event.arm, Event.kind, Event.machine)
            .where(Event.occurred_at < cutoff, _not_live(Event.rollout_id))
            .order_by(Event.id)
            .limit(chunk)
        ).all()
        if not rows:
            return deleted
        ids = [r.id for r in rows]
        machine = {
            (r.send_id, r.kind): (r.campaign_id, r.arm)
            for r in rows
            if r.machine
            and r.kind in ("open", "click")
            and r.send_id is not None
            and r.campaign_id is not None
        }
        if machine:
            remaining = set(
                session.execute(
                    sa.select(Event.send_id, Event.kind).where(
                        Event.send_id.in_({s for s, _ in machine}),
                        Event.machine.is_(True),
                        Event.id.not_in(ids),
                    )
                ).all()
            )
            totals: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
            for (send_id, kind), (campaign_id, arm) in machine.items():
                if (send_id, kind) in remaining or arm is None:
                    continue
                key = "machine_opens" if kind == "open" else "bot_clicks"
                counts = totals[(campaign_id, arm)]
                counts[key] = counts.get(key, 0) + 1
            add_folded(session, {k: {"machine_opens": 0, "bot_clicks": 0, **v} for k, v in totals.items()})
        session.execute(sa.delete(Event).where(Event.id.in_(ids)))
        session.commit()
        deleted += len(ids)


def bounce_window(sends_days: int, soft_bounce_days: int) -> int:
    """Bounce records live as long as sends, never shorter than the soft-bounce window (0: forever)."""
    return max(sends_days, soft_bounce_days) if sends_days > 0 else 0


def retention_job() -> dict[str, Any]:
    """The daily rq job: the windows come from the runtime's settings."""
    from campaigns import runtime

    rt = runtime.current()
    with rt.session() as session, audit.acting(audit.Actor("retention job", "worker")):
        report = apply_retention(
            session,
            events_days=rt.settings.retention_events_days,
            sends_days=rt.settings.retention_sends_days,
            bounces_days=bounce_window(rt.settings.retention_sends_days, rt.settings.soft_bounce_days),
        )
    return report.as_dict()
