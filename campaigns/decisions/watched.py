"""A completed rollout's evidence since completion, read from its aggregates in daily periods."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import ArmMetric, Rollout, RolloutAudit

WATCH_PERIOD = timedelta(days=1)
WATCH_PERIODS = 180  # the newest periods a completed rollout's guardrails are watched over


def completed_at(session: Session, rollout: Rollout) -> datetime | None:
    at = session.scalar(
        sa.select(sa.func.max(RolloutAudit.at)).where(
            RolloutAudit.rollout_id == rollout.id, RolloutAudit.to_state == "completed"
        )
    )
    return _aware(at)


def watched_periods(session: Session, rollout: Rollout) -> tuple[tuple[datetime, Any], ...]:
    """A completed rollout's sends since completion (whole arms), summed per day of send-time cohorts
    counted from the completion: the periods `campaigns.decisions.watch` tests, oldest first."""
    since = completed_at(session, rollout)
    if since is None:
        return ()
    rows = session.execute(
        sa.select(ArmMetric.cohort, ArmMetric.arm, ArmMetric.metric, sa.func.sum(ArmMetric.count),
                  sa.func.sum(ArmMetric.total), sa.func.sum(ArmMetric.total_sq))
        .where(ArmMetric.rollout_id == rollout.id, ArmMetric.segment == "",
               ArmMetric.cohort >= since - timedelta(hours=1))
        .group_by(ArmMetric.cohort, ArmMetric.arm, ArmMetric.metric)
    ).all()  # fmt: skip
    periods: dict[int, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(dict))
    for cohort_raw, arm, metric, count, total, total_sq in rows:
        cohort = _aware(cohort_raw)
        if cohort is None or cohort + timedelta(hours=1) <= since:  # an hour that ended before completion
            continue
        key = int((cohort - since) // WATCH_PERIOD) if cohort > since else 0
        sums = periods[key][str(arm)].setdefault(str(metric), [0.0, 0.0, 0.0])
        for i, v in enumerate((count, total, total_sq)):
            sums[i] += float(v or 0)
    keys = sorted(periods)[-WATCH_PERIODS:]
    return tuple(
        (since + k * WATCH_PERIOD, {a: {m: (v[0], v[1], v[2]) for m, v in ms.items()} for a, ms in periods[k].items()})
        for k in keys
    )  # fmt: skip


def _aware(moment: datetime | str | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
