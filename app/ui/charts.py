"""Chart data for static/js/app.js: the engine's numbers reshaped for drawing, nothing computed anew.

Three kinds: `arm_series` (a metric per arm over time, with interval bands where the engine gives
them), `exposure` (exposure over time with the decisions marked), `funnel` (rates per arm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from campaigns.decisions.policy import METRIC_DEFS
from campaigns.reports.results import ArmResult
from campaigns.rollout.stages import BASIS_POINTS
from campaigns.rollout.status import current_exposure_bp
from campaigns.stats import cs_halfwidth, mixture_rho
from models import Decision, Rollout, RolloutAudit

FUNNEL_STEPS = (("sent", "sent"), ("delivered", "delivered"), ("opens", "opened"), ("clicks", "clicked"),
                ("conversions", "converted"))  # fmt: skip
ARM_ORDER = ("treatment", "control", "holdout", "excluded")


def _arm_key(arm: str) -> int:
    return ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)


def funnel_chart(results: Sequence[ArmResult]) -> dict[str, Any]:
    """Each step as a share of the arm's sent messages, so arms of different sizes compare."""
    arms = []
    for r in sorted(results, key=lambda r: _arm_key(r.arm)):
        base = r.sent or 0
        values = [(getattr(r, field) / base) if base else 0.0 for field, _ in FUNNEL_STEPS]
        counts = [getattr(r, field) for field, _ in FUNNEL_STEPS]
        arms.append({"arm": r.arm, "values": values, "counts": counts})
    return {"steps": [label for _, label in FUNNEL_STEPS], "arms": arms, "format": "pct"}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _exposure(rollout: Rollout, state: Mapping[str, Any]) -> float:
    """Exposure of the rollout in a past state (an audit row's snapshot), by the engine's own rule."""
    past = SimpleNamespace(
        stages=rollout.stages,
        state=state.get("state", rollout.state),
        killed=bool(state.get("killed", False)),
        stage_index=int(state.get("stage_index", 0)),
        holdout_bp=int(state.get("holdout_bp", rollout.holdout_bp)),
    )
    return current_exposure_bp(cast(Rollout, past)) / BASIS_POINTS


def exposure_chart(
    rollout: Rollout, audits: Sequence[RolloutAudit], decisions: Sequence[Decision]
) -> dict[str, Any]:
    """Exposure over time from the audit log's snapshots, with each decision marked on it."""
    rows = sorted(audits, key=lambda a: (a.at, a.id))
    snapshots = [(a, (a.evidence or {}).get("snapshot") or {}) for a in rows]
    snapshots = [(a, s) for a, s in snapshots if "after" in s]
    first = snapshots[0][1].get("before") if snapshots else None
    start = _exposure(rollout, first) if first else current_exposure_bp(rollout) / BASIS_POINTS
    points = [{"x": _ms(rollout.created_at), "y": start}]
    points += [{"x": _ms(a.at), "y": _exposure(rollout, s["after"])} for a, s in snapshots]
    points.append({"x": _ms(datetime.now(UTC)), "y": current_exposure_bp(rollout) / BASIS_POINTS})

    def at(moment: datetime) -> float:
        ms, level = _ms(moment), points[0]["y"]
        for p in points:
            if p["x"] <= ms:
                level = p["y"]
        return float(level)

    marks = [
        {
            "x": _ms(d.at),
            "y": at(d.at),
            "outcome": d.outcome,
            "label": f"{d.outcome}: {d.reasons[0] if d.reasons else ''}"[:160],
        }
        for d in sorted(decisions, key=lambda d: d.id)
    ]
    return {"points": points, "decisions": marks, "x_kind": "time", "format": "pct"}


def arm_interval(
    mean: float | None, n: float | None, alpha: float | None, tuning_n: float | None
) -> tuple[float | None, float | None]:
    """The always-valid interval of one arm's rate at an evaluation, from the numbers the decision
    stored: the engine's own confidence sequence (`campaigns.stats.cs_halfwidth`) for a 0/1 metric
    with variance p(1 - p), as `campaigns.stats.compare` computes it for the difference. Used only when
    the evidence does not carry per-arm intervals itself."""
    if mean is None or not n or n <= 0:
        return None, None
    rho = mixture_rho(float(alpha or 0.05), float(tuning_n or 20_000))
    half = float(cs_halfwidth(mean * (1.0 - mean) / n, n, float(alpha or 0.05), rho))
    if not math.isfinite(half):
        return None, None
    return max(mean - half, 0.0), min(mean + half, 1.0)


def primary_charts(decisions: Sequence[Decision]) -> dict[str, Any]:
    """The primary metric per arm at each evaluation, and the lift with its always-valid interval.

    Per-arm bands come from the evidence when it carries them (`primary.arms.<arm>.low/high`), else from
    `arm_interval`; the lift's band is the confidence sequence the decision itself used.
    """
    rows = []
    for d in sorted(decisions, key=lambda d: d.id):
        primary = (d.evidence or {}).get("primary")
        if primary and primary.get("status") == "ok":
            rows.append((d, primary))
    if not rows:
        return {"metric": None, "rows": []}
    metric = str(rows[-1][1].get("metric", ""))
    definition = METRIC_DEFS.get(metric)
    fmt = "pct" if definition is None or definition.binary else "money"

    def arm(name: str, mean_key: str, n_key: str) -> dict[str, Any]:
        points = []
        for d, p in rows:
            band = ((p.get("arms") or {}).get(name)) or {}
            lo, hi = band.get("low"), band.get("high")
            if lo is None and definition is not None and definition.binary:
                policy = ((d.evidence or {}).get("config") or {}).get("policy") or {}
                lo, hi = arm_interval(p.get(mean_key), p.get(n_key), p.get("alpha"), policy.get("tuning_n"))
            points.append({"x": _ms(d.at), "y": p.get(mean_key), "lo": lo, "hi": hi})
        return {"arm": name, "points": points}

    arms = {
        "arms": [
            arm("treatment", "mean_treatment", "n_treatment"),
            arm("control", "mean_control", "n_control"),
        ],
        "x_kind": "time",
        "format": fmt,
        "y_label": metric,
    }
    lift = {
        "arms": [{"arm": "lift", "points": [
            {"x": _ms(d.at), "y": p.get("lift"), "lo": p.get("lift_low"), "hi": p.get("lift_high")} for d, p in rows
        ]}],
        "x_kind": "time", "format": "pct", "y_label": f"relative lift in {metric}",
    }  # fmt: skip
    table = [
        {"at": d.at, "treatment": p.get("mean_treatment"), "control": p.get("mean_control"), "lift": p.get("lift"),
         "lift_low": p.get("lift_low"), "lift_high": p.get("lift_high"), "n_treatment": p.get("n_treatment"),
         "n_control": p.get("n_control")}
        for d, p in rows
    ]  # fmt: skip
    return {"metric": metric, "format": fmt, "arms": arms, "lift": lift, "rows": table}


ENGAGEMENT_TITLES = {"opened": "Opened", "clicked": "Clicked", "converted": "Converted"}


def engagement_charts(
    curves: Sequence[Any], alpha: float = 0.05, tuning_n: float = 20_000
) -> list[dict[str, Any]]:
    """One `arm_series` chart per outcome: the cumulative share of each arm's recipients by hour since
    their send, with the always-valid interval (`arm_interval`) of each point: the curve is looked at
    again and again, so a fixed-sample interval would be too narrow."""
    charts = []
    for outcome, title in ENGAGEMENT_TITLES.items():
        arms = []
        for curve in sorted(curves, key=lambda c: _arm_key(c.arm)):
            points = []
            for hour, share in zip(curve.hours, curve.shares[outcome], strict=True):
                lo, hi = arm_interval(share, curve.n, alpha, tuning_n)
                points.append({"x": hour, "y": share, "lo": lo, "hi": hi})
            arms.append({"arm": curve.arm, "n": curve.n, "points": points})
        charts.append({"outcome": outcome, "title": title, "arms": arms, "x_label": "hours since the send",
                       "y_label": f"share {outcome.lower()}", "format": "pct"})  # fmt: skip
    return charts
