"""Watching after 100%: a completed rollout keeps its holdout, and its guardrails keep being tested.

The periodic evaluator evaluates completed rollouts too. Their evidence is the sends since completion,
in periods (`Snapshot.watched`: one per day of send-time cohorts, oldest first), AI content against
the holdout. Each rate guardrail runs a CUSUM e-detector (`campaigns.stats.rates.log_edetector_rate_ratio`):
a harm that starts weeks after completion is measured from its start, not diluted by the weeks
before. **Its own error budget**: a detector runs for ever, so what it bounds is how often a
harmless rollout is rolled back (at most once per ``1 / alpha`` periods per guardrail), not whether
it ever is; the watch therefore gets ``WATCH_SHARE`` (40%) of the rollout's alpha, split between its
guardrails (0.4% each by default), chosen on `bench/decisions_watch.py` so that harmless rollouts
watched for 20 waves are rolled back at most 5% of the time (the whole alpha gave 6% to 10.5%, half
of it 0.5% to 5.5%). Each detector mixes only
the harms that matter around its guardrail's (`WATCH_THETAS`: x1.5 to x3 for a rise, a 20% to 50% drop
for clicks), not barely-there or extreme ratios, which bought back part of the power the smaller
alpha costs. A guardrail that fails (or a cap broken since completion) rolls the AI content back and
alerts, as any rollback does; the click rate is tested in its harmful direction (fewer clicks) on
matured periods only.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from campaigns.decisions.policy import LATENCY_GUARDRAIL, METRIC_DEFS
from campaigns.decisions.snapshot import COMPARISON_ARMS, Snapshot, Verdict, arm_sum, recipients
from campaigns.stats import cap_test
from campaigns.stats.rates import RISE_THETAS, log_edetector_rate_ratio

# the harms that matter, as rate ratios in the harmful direction (for clicks: the holdout's rate over
# AI content's, so 1.25 is a 20% drop); mixed with equal weight
WATCH_THETAS = RISE_THETAS
WATCH_THETAS_DROP = (1.25, 1.5, 2.0)
WATCH_SHARE = 0.4  # of the rollout's alpha, split between the watched guardrails

TREATED = ("treatment",)


def watch_alpha(alpha: float, guardrail_alpha: float | None, rails: int) -> float:
    """Each watched guardrail's alpha: its own setting, else `WATCH_SHARE` of alpha split evenly."""
    return guardrail_alpha if guardrail_alpha is not None else alpha * WATCH_SHARE / max(rails, 1)


def watch(snapshot: Snapshot, evidence: dict[str, Any]) -> Verdict:
    """The verdict for a completed rollout: hold (all well) or rollback (a guardrail failed)."""
    cfg, policy = snapshot.config, snapshot.config.policy
    stage = snapshot.stages[min(snapshot.stage_index, len(snapshot.stages) - 1)]
    rails = [g for g in cfg.active(stage.gates.guardrails) if g.name != LATENCY_GUARDRAIL]
    rails = [g for g in rails if g.name != cfg.primary_metric]
    alpha = watch_alpha(policy.alpha, policy.guardrail_alpha, len(rails))
    out: dict[str, Any] = {"periods": len(snapshot.watched), "alpha": alpha}
    evidence["watch"] = out
    if not snapshot.watched:
        return Verdict(
            "hold",
            (
                "completed: no recipient since completion yet; the holdout stays and the guardrails keep watching",
            ),
            evidence,
        )
    rollback: list[str] = []
    health: list[str] = []
    since = snapshot.watched[0][0]
    for rail in rails:
        metric = METRIC_DEFS[rail.name]
        window = timedelta(hours=policy.window(metric.numerator)) if metric.higher_is_better else timedelta(0)
        periods = [
            arms
            for at, arms in snapshot.watched
            if not metric.higher_is_better or at + window <= snapshot.now
        ]
        n_t = [recipients(arms, TREATED, metric) for arms in periods]
        n_c = [recipients(arms, COMPARISON_ARMS, metric) for arms in periods]
        x_t = [arm_sum(arms, TREATED, metric.numerator)[1] for arms in periods]
        x_c = [arm_sum(arms, COMPARISON_ARMS, metric.numerator)[1] for arms in periods]
        if metric.higher_is_better:  # harm is a drop: the holdout's rate is the one that would be higher
            log_e = log_edetector_rate_ratio(x_c, n_c, x_t, n_t, WATCH_THETAS_DROP) if periods else 0.0
        else:
            log_e = log_edetector_rate_ratio(x_t, n_t, x_c, n_c, WATCH_THETAS) if periods else 0.0
        rate_t = sum(x_t) / sum(n_t) if sum(n_t) > 0 else None
        rate_c = sum(x_c) / sum(n_c) if sum(n_c) > 0 else None
        failed = log_e >= math.log(1.0 / rail.alpha(alpha))
        out[rail.name] = {"log_e_detector": log_e, "rate_treatment": rate_t, "rate_holdout": rate_c,
                          "n_treatment": sum(n_t), "n_holdout": sum(n_c), "failed": failed}  # fmt: skip
        if failed:
            went = "fell" if metric.higher_is_better else "rose"
            rollback.append(
                f"after completion, {rail.name} {went}: {_pct(rate_t)} with AI content against {_pct(rate_c)} "
                f"in the holdout since {since.date().isoformat()} (e-detector {math.exp(min(log_e, 700)):.3g} >= "
                f"{1 / rail.alpha(alpha):g}): rolling the AI content back"
            )
            health.append(f"guardrail:{rail.name}")
        if rail.cap is not None and not metric.higher_is_better:
            check = cap_test(sum(x_t), sum(n_t), rail.cap, alpha=rail.alpha(alpha))
            out[rail.name]["cap"] = {**check.to_json(), "cap": rail.cap}
            if check.worse:
                rollback.append(
                    f"after completion, {rail.name} of AI content is {check.rate_treatment:.4%}, significantly "
                    f"above its cap of {rail.cap:.4%}: rolling the AI content back"
                )
                health.append(f"cap:{rail.name}")
    if rollback:
        return Verdict("rollback", tuple(rollback), evidence, tuple(health))
    n_h = max((v.get("n_holdout", 0) for v in out.values() if isinstance(v, dict)), default=0)
    return Verdict(
        "hold",
        (f"completed and watched: no guardrail worse with AI content than in the holdout ({n_h:,.0f} holdout "
         f"recipients over {len(snapshot.watched)} day(s) since completion)",),
        evidence,
    )  # fmt: skip


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"
