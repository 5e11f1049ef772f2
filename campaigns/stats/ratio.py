"""The lift interval on the ratio scale: never below -100%, from the verdict's own sequence.

`campaigns.stats.lift` tests "no difference" with the variance pooled under that hypothesis and
reads the interval off the same statistic shifted to ``delta0``. Far from 0 that shift is wrong:
if treatment's mean is ``(1 + delta0)`` times comparison's, the difference ``m_t - (1 + delta0) m_c``
has the variance ``v_t + (1 + delta0)^2 v_c``, not the pooled one, and the interval could reach
below -100% (a treatment rate below zero), as the demo's ``+37.4% [-129.0%, +198.3%]`` did.

Here each ``delta0`` gets its own test of "treatment = (1 + delta0) x comparison", per stratum:

    S(delta0) = sum_s m_s (m_t,s - (1 + delta0) m_s) / V_s(delta0),   I(delta0) = sum_s m_s^2 / V_s(delta0)

with ``V_s(delta0)`` the variance under that hypothesis (0/1 outcomes: the pooled variance rescaled
by ``((1 + delta0) / n_t + (1 + delta0)^2 / n_c) / (1 / n_t + 1 / n_c)``, the Poisson shape of rare
rates; continuous: Welch's ``v_t / n_t + (1 + delta0)^2 v_c / n_c``), mixed over **multiplicative**
alternatives (a drop of ``g x smallest`` relative to ``1 + delta0``) with `lift`'s grid and weights.
At ``delta0 = 0`` this is exactly `lift`'s harm and benefit e-values, so the verdict and the
interval come from one sequence: "significantly worse" holds exactly when ``high < 0``, "better"
exactly when ``low > 0`` (the search starts from 0 on the side the verdict did not reject). As
``delta0`` falls towards -100% the variance of a rare rate shrinks with it, so the lower end stays
above -100%; with no treatment event at all it is -100%, which is the honest answer.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from campaigns.stats.lift import GRID, SMALLEST_EFFECT, WEIGHTS, LiftTest, lift_test, relative_sequence

_LOG_WEIGHTS = tuple(math.log(w) for w in WEIGHTS)
UNBOUNDED = 1e6  # the upper end when no finite lift is rejected (shown as a very large number)
_SPAN = math.log(UNBOUNDED + 1.0)


class _Strata:
    """Per-stratum means and variances of one rollout's arms (usable strata only)."""

    def __init__(self, n_t: npt.ArrayLike, total_t: npt.ArrayLike, sq_t: npt.ArrayLike, n_c: npt.ArrayLike,
                 total_c: npt.ArrayLike, sq_c: npt.ArrayLike, binary: bool) -> None:  # fmt: skip
        nt, tt, qt = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (n_t, total_t, sq_t))
        nc, tc, qc = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (n_c, total_c, sq_c))
        with np.errstate(divide="ignore", invalid="ignore"):
            mt, mc = tt / nt, tc / nc
            if binary:
                pooled = (tt + tc) / (nt + nc)
                v0 = pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc)
                self.a, self.b = v0 / nt / (1.0 / nt + 1.0 / nc), v0 / nc / (1.0 / nt + 1.0 / nc)
                self.linear = True
            else:
                vt = np.maximum((qt - nt * mt * mt) / (nt - 1.0), 0.0) / nt
                vc = np.maximum((qc - nc * mc * mc) / (nc - 1.0), 0.0) / nc
                self.a, self.b = vt, vc
                self.linear = False
                v0 = vt + vc
            keep = (nt > (0 if binary else 1)) & (nc > (0 if binary else 1)) & (mc > 0) & (v0 > 0)
            keep &= np.isfinite(v0)
        # plain floats: a handful of strata, and the interval's root finding calls `log_e` often
        self.rows = list(zip(*(x[keep].tolist() for x in (mt, mc, self.a, self.b)), strict=True))

    def log_e(self, delta0: float, direction: int, smallest: float) -> float:
        """log e-value against "lift is on the other side of delta0" (direction -1: below)."""
        r = 1.0 + delta0
        # binary: V = a (1 + d) + b (1 + d)^2 (pooled, Poisson-shaped); continuous: V = a + b (1 + d)^2
        score = info = 0.0
        for mt, mc, a, b in self.rows:
            v = (a * r if self.linear else a) + b * r * r
            if not v > 0:
                return 0.0
            score += mc * (mt - r * mc) / v
            info += mc * mc / v
        if not self.rows:
            return 0.0
        terms = [
            lw + direction * g * smallest * r * score - 0.5 * (g * smallest * r) ** 2 * info
            for lw, g in zip(_LOG_WEIGHTS, GRID, strict=True)
        ]
        top = max(terms)
        return top + math.log(sum(math.exp(t - top) for t in terms))


def _bound(strata: _Strata, start: float, threshold: float, direction: int, smallest: float) -> float:
    """The first delta0 beyond `start` (upwards for direction -1, downwards for +1) that the
    one-sided test rejects; -1 / UNBOUNDED when none is."""

    def gap(u: float) -> float:
        return strata.log_e(math.expm1(u), direction, smallest) - threshold

    sign = -direction
    u0 = math.log1p(max(start, -1.0 + 1e-12))
    if gap(u0) >= 0:
        return start
    step = max(smallest, 0.05)
    near, far = u0, u0 + sign * step
    while gap(far) < 0:
        if abs(far - u0) > _SPAN:
            return -1.0 if direction > 0 else UNBOUNDED
        near, step = far, step * 2.0
        far = u0 + sign * step
    root = brentq(gap, min(near, far), max(near, far), xtol=1e-9)
    return max(math.expm1(float(root)), -1.0)


def ratio_lift_test(
    n_t: npt.ArrayLike,
    total_t: npt.ArrayLike,
    sq_t: npt.ArrayLike,
    n_c: npt.ArrayLike,
    total_c: npt.ArrayLike,
    sq_c: npt.ArrayLike,
    binary: bool,
    *,
    alpha_harm: float,
    alpha_benefit: float,
    smallest: float = SMALLEST_EFFECT,
    higher_is_better: bool = True,
) -> LiftTest:
    """`lift.lift_test` with its interval on the ratio scale. For a lower-is-better metric the test
    reads the flipped lift (as `lift_test` on ``-estimate`` does): harm is a rise."""
    estimate, info = relative_sequence(n_t, total_t, sq_t, n_c, total_c, sq_c, binary)
    sign = 1.0 if higher_is_better else -1.0
    base = lift_test(
        sign * float(estimate),
        float(info),
        alpha_harm=alpha_harm,
        alpha_benefit=alpha_benefit,
        smallest=smallest,
    )
    if base.status != "ok":
        return base
    strata = _Strata(n_t, total_t, sq_t, n_c, total_c, sq_c, binary)
    est = float(estimate)
    harm_t, benefit_t = math.log(1.0 / alpha_harm), math.log(1.0 / alpha_benefit)
    if higher_is_better:
        high = _bound(strata, est if base.worse else max(est, 0.0), harm_t, -1, smallest)
        low = _bound(strata, est if base.better else min(est, 0.0), benefit_t, +1, smallest)
        return replace(base, lift_low=low, lift_high=high)
    # lower is better: harm is the metric rising (its lower end above 0), benefit it falling
    low = _bound(strata, est if base.worse else min(est, 0.0), harm_t, +1, smallest)
    high = _bound(strata, est if base.better else max(est, 0.0), benefit_t, -1, smallest)
    return replace(base, lift_low=-high, lift_high=-low)
