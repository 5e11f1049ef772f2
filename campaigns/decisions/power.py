"""No completion on noise: may the rollout complete, or would it be "completed without evidence"?

A rollout completes only when its tests had the power to see the harm that matters:

- the primary metric: a drop of ``HARM_PRIMARY`` (20% relative), seen by its own one-sided harm test
  at the information gathered so far (matured recipients, every randomized stage);
- the rate guardrails: unsubscribes and complaints doubling, clicks falling by 20% (``HARM_RATIOS``),
  seen by their exact rate-ratio tests given the comparison arm's rate (clicks only when any were
  recorded: messages without tracked links have none to lose).

"Power" is the chance, were that harm true, that the test would reject now (``POWER``: 80%). An
interval that still spans "-1,708% to +1,861%" has none, and "not significantly worse" then means
nothing. Without it the evaluator holds, says what is missing, and only an approver can complete
the rollout by hand, recorded as "completed without evidence" (`campaigns.rollout.machine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import bdtrc, ndtr

from campaigns.decisions.early import HARM_PRIMARY
from campaigns.decisions.policy import LATENCY_GUARDRAIL, METRIC_DEFS
from campaigns.decisions.primary import arms_of
from campaigns.decisions.snapshot import COMPARISON_ARMS, Evidence, Snapshot
from campaigns.stats.lift import LiftTest, _log_e
from campaigns.stats.rates import RISE_THETAS, THETAS, log_evalue_rate_ratio

HARM_RATIOS: dict[str, float] = {"unsubscribe_rate": 2.0, "complaint_rate": 2.0, "click_rate": 0.8}
POWER = 0.80


def primary_power(test: LiftTest, harm: float = HARM_PRIMARY) -> float:
    """P(the harm test rejects now | the lift is -harm), at the test's information."""
    if test.status != "ok" or test.information <= 0:
        return 0.0
    info, threshold = test.information, math.log(1.0 / test.alpha_harm)

    def gap(est: float) -> float:
        return _log_e(est, info, 0.0, -1, test.smallest_effect) - threshold

    low = -1.0 / math.sqrt(info)
    while gap(low) < 0:
        low *= 2.0
        if low < -1e6:
            return 0.0
    critical = float(brentq(gap, low, 0.0, xtol=1e-10)) if gap(0.0) < 0 else 0.0
    return float(ndtr((critical + harm) * math.sqrt(info)))


def rate_power(n_t: float, x_t: float, n_c: float, x_c: float, ratio: float, alpha: float) -> float:
    """P(the rate-ratio test rejects now | treatment's rate is `ratio` times comparison's), at the
    comparison's observed rate (both arms' pooled when comparison saw none). A ratio below 1 is a
    drop (clicks): the test then runs with the arms swapped, as `decide` does."""
    if n_t <= 0 or n_c <= 0:
        return 0.0
    rate = x_c / n_c if x_c > 0 else (x_t + x_c) / (n_t + n_c)
    if rate <= 0:
        return 0.0
    base, thetas = rate, RISE_THETAS  # the comparison arm's rate; a rise is tested on its harms
    if ratio < 1:  # a drop: the comparison arm is the one whose rate is higher, so swap the arms
        n_t, n_c, ratio, base, thetas = n_c, n_t, 1.0 / ratio, rate * ratio, THETAS
    expected_t, expected_c = ratio * base * n_t, base * n_c
    total = round(expected_t + expected_c)
    if total <= 0:
        return 0.0
    xs = np.arange(total + 1, dtype=np.float64)
    log_e = log_evalue_rate_ratio(xs[:, None], [n_t], (total - xs)[:, None], [n_c], thetas)
    rejecting = np.flatnonzero(log_e >= math.log(1.0 / alpha))
    if rejecting.size == 0:
        return 0.0
    q = n_t / (n_t + n_c)
    shifted = ratio * q / (ratio * q + 1.0 - q)
    first = int(rejecting[0])
    return 1.0 if first == 0 else float(bdtrc(first - 1, total, shifted))  # P(X >= first)


@dataclass(frozen=True)
class Completion:
    powered: bool
    evidence: dict[str, Any]
    missing: tuple[str, ...]  # in words: which harm could not have been seen


def completion_power(snapshot: Snapshot, whole: Evidence, test: LiftTest | None) -> Completion:
    """Could the primary metric and the guardrails have seen the harm that matters?"""
    cfg, policy = snapshot.config, snapshot.config.policy
    out: dict[str, Any] = {"required_power": POWER}
    missing: list[str] = []
    power = primary_power(test) if test is not None else 0.0
    out[cfg.primary_metric] = {"harm": -HARM_PRIMARY, "power": power}
    if power < POWER:
        missing.append(
            f"{cfg.primary_metric} would catch a {HARM_PRIMARY:.0%} drop with {power:.0%} probability "
            f"(needs {POWER:.0%}): more matured recipients are needed"
        )
    stage = snapshot.stages[min(snapshot.stage_index, len(snapshot.stages) - 1)]
    rails = [g for g in cfg.active(stage.gates.guardrails) if g.name != LATENCY_GUARDRAIL]
    rail_alpha = policy.rail_alpha(len(rails))
    for rail in rails:
        ratio = HARM_RATIOS.get(rail.name)
        if ratio is None or rail.name == cfg.primary_metric:
            continue
        metric = METRIC_DEFS[rail.name]
        view = whole.view(metric.numerator, policy) if metric.higher_is_better else whole.data
        t = arms_of(snapshot, view, metric, ("treatment",))
        c = arms_of(snapshot, view, metric, COMPARISON_ARMS)
        if metric.higher_is_better and sum(t.total) + sum(c.total) <= 0:
            # no click at all in either arm: messages without tracked links, nothing to watch
            out[rail.name] = {"harm_ratio": ratio, "power": None, "note": "no events recorded: not measured"}
            continue
        p = rate_power(sum(t.n), sum(t.total), sum(c.n), sum(c.total), ratio, rail.alpha(rail_alpha))
        out[rail.name] = {"harm_ratio": ratio, "power": p}
        if p < POWER:
            harm = f"a {1 - ratio:.0%} drop" if ratio < 1 else f"{ratio:g}x as many"
            missing.append(
                f"{rail.name} would catch {harm} with {p:.0%} probability (needs {POWER:.0%}; "
                f"{sum(c.total):g} events among {sum(c.n):g} comparison recipients so far)"
            )
    return Completion(not missing, out, tuple(missing))
