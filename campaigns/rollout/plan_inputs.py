"""What the workspace knows for sizing a plan: the audience's sendable size, the cadence, baselines from
its own history, and maturation windows learned from its own event delays.

- **Audience**: the sendable contacts of the campaign's segment (a campaign's ``wave_size`` caps one
  send); a rollout without a campaign yet: every sendable contact.
- **Cadence**: a flow step's rollout (`series` "flow:<flow>:<step>"): its daily rate
  (`campaigns.rollout.flow_rate`); a recurring campaign's cron (hours between two occurrences); a campaign sent in waves
  (``wave_size``) is a one-off of that many sends, a day apart; otherwise a series sharing the rollout,
  weekly (stated as an assumption).
- **Baselines**: the comparison arms' rates over every rollout's aggregates when they hold at least
  ``MIN_HISTORY`` recipients; the stated defaults (`sizing.DEFAULT_BASELINES`) otherwise.
- **Maturation windows** (`learned_windows`): per event kind (the primary metric's, and unsubscribes'
  for the watch after 100%), the hours by which ``QUANTILE`` (95%) of
  the events of the latest sends arrived, rounded up to a whole hour; learned only from at least
  ``MIN_EVENTS`` events, the fixed windows (`policy.MATURATION_HOURS`) otherwise.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.rollout.sizing import DEFAULT_BASELINES, Cadence, PlanInputs
from models import ArmMetric, Campaign, Event, Send

MIN_HISTORY = 2000
MIN_EVENTS = 200
QUANTILE = 0.95
SAMPLE = 5000
WEEK_HOURS = 168.0
NUMERATORS = {
    "conversion_rate": "conversion",
    "click_rate": "click",
    "open_rate": "open",
    "revenue_per_recipient": "conversion",
    "unsubscribe_rate": "unsubscribe",
    "complaint_rate": "complaint",
}


def audience_size(session: Session, campaign: Campaign | None) -> int:
    """The sendable audience, through the segment-size cache (`campaigns.audience.sizes`): the
    evaluator asks at every look, and counting a behavioural segment scans the purchase history.
    Counted here when no runtime is installed or Redis does not answer."""
    from redis.exceptions import RedisError

    from campaigns import runtime
    from campaigns.audience import sizes
    from campaigns.audience.rules import count, segment_rules

    segment_id = campaign.segment_id if campaign else None
    rules = segment_rules(session, segment_id)
    try:
        return sizes.size(runtime.current().redis, session, segment_id, rules).sendable
    except (RuntimeError, RedisError):
        return count(session, rules, sendable_only=True, now=datetime.now(UTC))


def cadence_of(session: Session, campaign: Campaign | None) -> Cadence:
    size = audience_size(session, campaign)
    if campaign is not None and campaign.cron:
        from campaigns.schedule import next_occurrence

        first = next_occurrence(campaign.cron, campaign.timezone or "UTC", datetime.now(UTC))
        second = next_occurrence(campaign.cron, campaign.timezone or "UTC", first)
        hours = max((second - first).total_seconds() / 3600, 1.0)
        return Cadence("recurring", size, hours, None, f"the campaign's schedule ({campaign.cron})")
    if campaign is not None and campaign.wave_size:
        per = min(int(campaign.wave_size), size) or 1
        sends = max(1, math.ceil(size / per))
        return Cadence(
            "one-off", per, 24.0, sends, f"one campaign in {sends} waves of {per:,}, a day apart (assumed)"
        )
    return Cadence("series", size, WEEK_HOURS, None, "a series sharing the rollout, weekly (assumed)")


def baselines(session: Session) -> tuple[dict[str, float], str]:
    rows = dict(
        session.execute(
            sa.select(ArmMetric.metric, sa.func.sum(ArmMetric.total))
            .where(ArmMetric.segment == "", ArmMetric.arm.in_(("control", "holdout")))
            .group_by(ArmMetric.metric)
        ).all()
    )
    sent = float(rows.get("sent") or 0)
    if sent < MIN_HISTORY:
        return dict(DEFAULT_BASELINES), "stated defaults (no history in this workspace yet)"
    out = dict(DEFAULT_BASELINES)
    for metric, event in NUMERATORS.items():
        if metric != "revenue_per_recipient" and rows.get(event) is not None:
            out[metric] = max(float(rows[event] or 0) / sent, 1e-5)
    return out, f"this workspace's history ({int(sent):,} comparison recipients)"


def learned_windows(
    session: Session, now: datetime | None = None, kinds: tuple[str, ...] = ("conversion", "click", "open")
) -> dict[str, dict[str, float]]:
    """event kind -> {"p50": hours, "window": hours (95%), "events": n} for kinds with enough events."""
    now = now or datetime.now(UTC)
    out: dict[str, dict[str, float]] = {}
    for kind in kinds:
        rows = session.execute(
            sa.select(Event.occurred_at, Send.sent_at)
            .join(Send, Send.id == Event.send_id)
            .where(Event.kind == kind, Event.machine.is_(False), Send.sent_at.is_not(None),
                   Event.occurred_at >= now - timedelta(days=90))
            .order_by(Event.id.desc())
            .limit(SAMPLE)
        ).all()  # fmt: skip
        delays = sorted(
            max((_aware(a) - _aware(b)).total_seconds() / 3600, 0.0)
            for a, b in rows
            if a is not None and b is not None
        )
        if len(delays) < MIN_EVENTS:
            continue
        q = delays[min(len(delays) - 1, math.ceil(QUANTILE * len(delays)) - 1)]
        out[kind] = {
            "p50": delays[len(delays) // 2],
            "window": float(max(1, math.ceil(q))),
            "events": float(len(delays)),
        }
    return out


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def plan_inputs(
    session: Session,
    campaign: Campaign | None,
    *,
    primary_metric: str = "conversion_rate",
    holdout_bp: int = 500,
    cap_bp: int = 10_000,
    mode: str | None = None,
    harm: dict[str, float] | None = None,
    cadence: Cadence | None = None,
) -> PlanInputs:
    from campaigns.decisions.policy import MATURATION_HOURS, Policy

    rates, source = baselines(session)
    event = NUMERATORS.get(primary_metric, "conversion")
    windows = learned_windows(session, kinds=tuple(dict.fromkeys((event, "unsubscribe"))))
    learned, unsub = windows.get(event), windows.get("unsubscribe")
    unsub_window = unsub["window"] if unsub else MATURATION_HOURS.get("unsubscribe", 72.0)
    policy = Policy()
    kwargs: dict[str, Any] = {}
    if harm:
        kwargs["harm"] = harm
    return PlanInputs(
        cadence=cadence or cadence_of(session, campaign),
        primary_metric=primary_metric,
        baselines=rates,
        baseline_source=source,
        window_hours=learned["window"] if learned else MATURATION_HOURS.get(event, 72.0),
        arrival_p50_hours=learned["p50"] if learned else MATURATION_HOURS.get(event, 72.0) / 3,
        unsubscribe_window_hours=unsub_window,
        unsubscribe_p50_hours=unsub["p50"] if unsub else unsub_window / 3,
        harm_alpha=policy.harm_alpha,
        rail_alpha=policy.rail_alpha(),
        holdout_bp=holdout_bp,
        cap_bp=cap_bp,
        mode=mode,
        **kwargs,
    )


def rollout_campaign(session: Session, rollout_id: int) -> Campaign | None:
    return session.scalars(
        sa.select(Campaign).where(Campaign.rollout_id == rollout_id).order_by(Campaign.id.desc()).limit(1)
    ).first()


def rollout_cadence(session: Session, rollout: Any) -> Cadence:
    """The cadence of a rollout: a flow step's daily rate, or its latest campaign's."""
    from campaigns.rollout.flow_rate import flow_cadence

    flow = flow_cadence(session, getattr(rollout, "series", None))
    if flow is not None:
        return flow
    return cadence_of(session, rollout_campaign(session, int(rollout.id)) if rollout.id is not None else None)
