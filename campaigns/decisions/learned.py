"""What an evaluation learns from the workspace (database reads): the primary metric's maturation window
from the workspace's own event delays, and the cadence a hold uses to say when it clears.

A window set on the rollout (``guardrails.policy.maturation_hours``) wins; otherwise the primary
metric's event gets the hours by which 95% of its events arrived in this workspace
(`campaigns.rollout.plan_inputs.learned_windows`), and the fixed windows stay the fallback.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from campaigns.decisions.policy import METRIC_DEFS, DecisionConfig
from campaigns.rollout.stages import BASIS_POINTS, Stage
from models import Rollout

EVERY = {168.0: "weekly", 24.0: "daily"}


def with_learned_windows(
    session: Session, config: DecisionConfig, rollout: Rollout, now: datetime
) -> DecisionConfig:
    from campaigns.rollout.plan_inputs import learned_windows

    explicit = set(((rollout.guardrails or {}).get("policy") or {}).get("maturation_hours") or {})
    event = METRIC_DEFS[config.primary_metric].numerator
    if event in explicit:
        return config
    learned = learned_windows(session, now, kinds=(event,)).get(event)
    if learned is None:
        return config
    hours = {**config.policy.maturation_hours, event: learned["window"]}
    if event == "conversion" and "revenue" not in explicit:
        hours["revenue"] = learned["window"]
    return dataclasses.replace(config, policy=dataclasses.replace(config.policy, maturation_hours=hours))


def cadence_for(
    session: Session, rollout: Rollout, stages: tuple[Stage, ...], config: DecisionConfig
) -> dict[str, Any] | None:
    """Expected treatment and comparison recipients per send at the current stage, and the cadence."""
    from campaigns.rollout.plan_inputs import rollout_cadence

    if not 0 <= rollout.stage_index < len(stages) or stages[rollout.stage_index].kind != "percent":
        return None
    cadence = rollout_cadence(session, rollout)  # a flow step's: its daily rate
    holdout = int(rollout.holdout_bp or 0)
    share = min(stages[rollout.stage_index].exposure_bp, BASIS_POINTS - holdout) / BASIS_POINTS
    event = METRIC_DEFS[config.primary_metric].numerator
    return {
        "treatment_per_send": cadence.per_send * share,
        "comparison_per_send": cadence.per_send * (1.0 - share),
        "interval_hours": cadence.interval_hours,
        "every": EVERY.get(cadence.interval_hours, f"every {cadence.interval_hours:g} h"),
        "window_hours": config.policy.window(event),
        "source": cadence.source,
    }
