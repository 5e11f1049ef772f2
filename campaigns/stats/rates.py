"""Exact always-valid tests for rare events (unsubscribes, complaints, bounces, send errors).

The normal approximation behind `compare` breaks down with a handful of events: two complaints among
500 treatment recipients against a 0.03% baseline look like z = 4.8, yet happen by chance 1% of the
time, and a policy looking after every wave would roll back healthy rollouts. These tests are exact.

**Treatment worse than comparison** (rate ratio > 1). Condition on where the events fell: under "no
difference" (and rare events, so counts are Poisson) each event is in treatment with probability
``q_s = n_t / (n_t + n_c)`` of its stage; if treatment's rate is ``theta`` times comparison's, with
probability ``q_s theta / (q_s theta + 1 - q_s)``. The likelihood ratio over all events,

    LR(theta) = prod_s (theta / (q_s theta + 1 - q_s))^x_t,s * (1 / (q_s theta + 1 - q_s))^x_c,s,

averaged over a grid of harmful ratios ``THETAS``, is a nonnegative supermartingale under
``theta <= 1`` whatever the order of events; rejecting when it reaches 1/alpha is valid at every
look (Ville). It is order-free, so it can be computed from per-stage counts.

**Rate above a cap**: the binomial likelihood ratio of ``p' = cap * theta`` against ``cap``,
averaged over the same grid; a supermartingale whenever the true rate is at most the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

THETAS: tuple[float, ...] = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0)  # harmful rate ratios mixed with equal weight
# A rise of a rare harm signal (unsubscribes, complaints, bounces, send errors) is tested on the harms
# that matter, x1.5 to x3 around the policy's x2 (`campaigns.rollout.sizing.DEFAULT_HARM`), during the
# ramp and in the watch after 100% alike. Against the full grid this buys back the mixture's price of
# ratios nobody acts on: at 3,000 contacts a week, a tripling of unsubscribes (40 events against 14
# after three sends) has log e-value 5.89 instead of 5.34, over the threshold of 5.57. A rise of 25%
# is then no longer caught on any list; a drop (clicks) and a cap keep the full grid.
RISE_THETAS: tuple[float, ...] = (1.5, 2.0, 3.0)

FloatArray = npt.NDArray[np.float64]


def logsumexp(a: FloatArray, axis: int = 0) -> FloatArray:
    """log(sum(exp(a))) along `axis`, stable (scipy's costs more than the tests it serves here)."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.asarray(np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis))


def log_evalue_rate_ratio(
    x_t: npt.ArrayLike,
    n_t: npt.ArrayLike,
    x_c: npt.ArrayLike,
    n_c: npt.ArrayLike,
    thetas: tuple[float, ...] = THETAS,
    weights: tuple[float, ...] | None = None,
) -> FloatArray:
    """log e-value that treatment's event rate exceeds comparison's; last axis = strata (stages).
    The ratios are mixed with equal weight unless `weights` (summing to 1) are given."""
    xt, nt, xc, nc = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x_t, n_t, x_c, n_c)))
    usable = (nt > 0) & (nc > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(usable, nt / (nt + nc), 0.0)
    th = np.asarray(thetas, dtype=np.float64).reshape((-1,) + (1,) * q.ndim)
    denominator = np.log(q * th + 1.0 - q)
    per_stratum = np.where(usable, xt * (np.log(th) - denominator) - xc * denominator, 0.0)
    log_lr = per_stratum.sum(axis=-1)  # (thetas, ...)
    if weights is None:
        return np.asarray(logsumexp(log_lr, axis=0) - math.log(len(thetas)), dtype=np.float64)
    log_w = np.log(np.asarray(weights, dtype=np.float64)).reshape((-1,) + (1,) * (log_lr.ndim - 1))
    return np.asarray(logsumexp(log_lr + log_w, axis=0), dtype=np.float64)


def log_evalue_above_cap(
    x: npt.ArrayLike, n: npt.ArrayLike, cap: float, thetas: tuple[float, ...] = THETAS
) -> FloatArray:
    """log e-value that the event rate exceeds `cap` (0 < cap < 1)."""
    xx, nn = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64))
    alt = np.minimum(cap * np.asarray(thetas, dtype=np.float64), 0.999999).reshape((-1,) + (1,) * xx.ndim)
    log_lr = xx * np.log(alt / cap) + (nn - xx) * np.log((1.0 - alt) / (1.0 - cap))
    return np.asarray(logsumexp(log_lr, axis=0) - math.log(len(thetas)), dtype=np.float64)


@dataclass(frozen=True)
class RateTest:
    """Is treatment's rate of a rare event significantly higher (guardrail), or above its cap?"""

    status: str  # "ok" | "no_data"
    events_treatment: float
    events_control: float
    rate_treatment: float
    rate_control: float | None  # None for a cap test
    rate_ratio: float | None  # observed (stratified by exposure): events_t / expected events_t
    log_e: float
    alpha: float

    @property
    def worse(self) -> bool:
        return self.status == "ok" and self.log_e >= math.log(1.0 / self.alpha)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**out, "worse": self.worse}


def rate_ratio_test(
    x_t: tuple[float, ...],
    n_t: tuple[float, ...],
    x_c: tuple[float, ...],
    n_c: tuple[float, ...],
    *,
    alpha: float,
    thetas: tuple[float, ...] = THETAS,
    weights: tuple[float, ...] | None = None,
) -> RateTest:
    """Guardrail verdict from per-stage counts (events and recipients of each arm)."""
    nt, nc = float(sum(n_t)), float(sum(n_c))
    et, ec = float(sum(x_t)), float(sum(x_c))
    if nt <= 0 or nc <= 0:
        return RateTest("no_data", et, ec, 0.0, None, None, 0.0, alpha)
    expected = sum(
        (xt + xc) * a / (a + b) for xt, a, xc, b in zip(x_t, n_t, x_c, n_c, strict=True) if a > 0 and b > 0
    )
    ratio = et / expected if expected > 0 else None
    log_e = float(log_evalue_rate_ratio(x_t, n_t, x_c, n_c, thetas, weights))
    return RateTest("ok", et, ec, et / nt, ec / nc, ratio, log_e, alpha)


def cap_test(events: float, n: float, cap: float, *, alpha: float) -> RateTest:
    if n <= 0 or not 0 < cap < 1:
        return RateTest("no_data", events, 0.0, 0.0, None, None, 0.0, alpha)
    return RateTest(
        "ok",
        events,
        0.0,
        events / n,
        None,
        (events / n) / cap,
        float(log_evalue_above_cap(events, n, cap)),
        alpha,
    )


def log_edetector_rate_ratio(
    x_t: npt.ArrayLike, n_t: npt.ArrayLike, x_c: npt.ArrayLike, n_c: npt.ArrayLike,
    thetas: tuple[float, ...] = THETAS,
) -> float:  # fmt: skip
    """log of a CUSUM e-detector (Shin, Ramdas and Rinaldo 2023) for "treatment's rate became
    higher than comparison's" over consecutive periods (the last axis: cohorts, oldest first):
    the largest, over every start period k, of the rate-ratio e-value computed from period k on.
    Raising an alarm when it reaches 1/alpha keeps the average run length of a harmless rollout
    above 1/alpha periods, however long it is watched, while a harm that starts late is measured
    from its start and not diluted by the harmless periods before it."""
    if np.asarray(x_t).size == 0:
        return 0.0
    return float(log_edetectors_rate_ratio(x_t, n_t, x_c, n_c, thetas)[0])


def log_edetectors_rate_ratio(
    x_t: npt.ArrayLike, n_t: npt.ArrayLike, x_c: npt.ArrayLike, n_c: npt.ArrayLike,
    thetas: tuple[float, ...] = THETAS,
) -> FloatArray:  # fmt: skip
    """`log_edetector_rate_ratio` of many streams at once: arrays of shape (streams, periods), or
    (periods,) for one stream (counts may broadcast, e.g. recipients the same in every stream);
    one value per stream (what `campaigns.rollout.watch_forecast` simulates)."""
    arrays = np.broadcast_arrays(
        *(np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (x_t, n_t, x_c, n_c))
    )
    xt, nt, xc, nc = arrays
    if xt.shape[-1] == 0:
        return np.zeros(xt.shape[0])
    usable = (nt > 0) & (nc > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(usable, nt / (nt + nc), 0.0)
    th = np.asarray(thetas, dtype=np.float64)[:, None, None]
    denominator = np.log(q * th + 1.0 - q)
    per_period = np.where(usable, xt * (np.log(th) - denominator) - xc * denominator, 0.0)  # (thetas, S, K)
    from_k = np.cumsum(per_period[..., ::-1], axis=-1)[..., ::-1]  # log LR of periods k..K-1, per theta
    per_start = logsumexp(from_k, axis=0) - math.log(len(thetas))
    return np.asarray(per_start.max(axis=-1), dtype=np.float64)
