"""May a rollout complete on its evidence? The state machine asks before any completion, by hand too.

It reads the rollout's aggregates itself (whole arms, and matured for the primary metric's window)
rather than through `evaluation`, which applies decisions through the state machine.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions.decide import primary_def
from campaigns.decisions.policy import METRIC_DEFS, parse_config
from campaigns.decisions.power import completion_power
from campaigns.decisions.primary import primary_lift, randomized_stages
from campaigns.decisions.snapshot import Snapshot
from campaigns.errors import InputError
from campaigns.rollout.stages import parse_plan
from models import ArmMetric, Rollout


def unpowered(snapshot: Snapshot) -> list[str]:
    """What the evidence could not have seen (empty: the rollout may complete)."""
    whole = snapshot.whole
    for name in snapshot.excluded_segments:
        if name in snapshot.segments:
            whole = whole.minus(snapshot.segments[name])
    test = None
    if randomized_stages(snapshot):
        metric = primary_def(snapshot)
        test = primary_lift(snapshot, whole, metric, snapshot.config.policy.harm_alpha)
    return list(completion_power(snapshot, whole, test).missing)


def completion_problems(session: Session, rollout: Rollout, now: datetime) -> list[str]:
    try:
        config = parse_config(rollout.primary_metric, rollout.guardrails)
        stages = parse_plan(list(rollout.stages or []))
    except InputError as exc:
        return [f"the rollout's settings cannot be evaluated: {exc}"]
    window = config.policy.window(METRIC_DEFS[config.primary_metric].numerator)
    windows = sorted({w for w in config.policy.maturation_hours.values() if w > 0})
    ripe = {w: ArmMetric.cohort <= now - timedelta(hours=w + 1) for w in windows}
    rows = session.execute(
        sa.select(ArmMetric.stage_index, ArmMetric.arm, ArmMetric.metric, sa.func.sum(ArmMetric.count),
                  sa.func.sum(ArmMetric.total), sa.func.sum(ArmMetric.total_sq),
                  *(sa.func.sum(sa.case((ripe[w], col), else_=0.0)) for w in windows
                    for col in (ArmMetric.count, ArmMetric.total, ArmMetric.total_sq)))
        .where(ArmMetric.rollout_id == rollout.id, ArmMetric.segment == "")
        .group_by(ArmMetric.stage_index, ArmMetric.arm, ArmMetric.metric)
    ).all()  # fmt: skip
    data: Any = defaultdict(lambda: defaultdict(dict))
    matured: Any = {w: defaultdict(lambda: defaultdict(dict)) for w in windows}
    for stage, arm, metric, count, total, total_sq, *by_window in rows:
        data[int(stage)][str(arm)][str(metric)] = (float(count or 0), float(total or 0), float(total_sq or 0))
        for i, w in enumerate(windows):
            c, t, q = by_window[3 * i : 3 * i + 3]
            matured[w][int(stage)][str(arm)][str(metric)] = (float(c or 0), float(t or 0), float(q or 0))
    snapshot = Snapshot(
        rollout_id=int(rollout.id), state=rollout.state, killed=bool(rollout.killed),
        stage_index=int(rollout.stage_index), stages=stages, holdout_bp=int(rollout.holdout_bp or 0),
        config=config, data=data, now=now, matured=matured if window > 0 else None,
    )  # fmt: skip
    return unpowered(snapshot)
