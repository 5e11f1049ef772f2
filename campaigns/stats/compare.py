"""Treatment against comparison for one metric: difference, relative lift, always-valid verdicts.

Data come as per-recipient sums per stratum (a rollout stage): ``n`` recipients, ``total`` of the
metric, ``total_sq`` of its squares. For a 0/1 outcome total = total_sq = recipients with it.

Why strata: the share of treatment changes from stage to stage, and outcomes drift over time (a
Black-Friday wave converts better), so pooling stages would mix the two (Simpson's paradox). Each
stage gives its own difference of means; they are combined with Cochran-Mantel-Haenszel weights
``w_s ∝ n_t,s n_c,s / (n_t,s + n_c,s)`` (about the treatment's size when control is large, so a 1%
stage with a huge control does not drown the 10% stage), ``d = sum w_s d_s``, ``v = sum w_s^2 v_s``.
The weights depend on sample sizes only, never on outcomes. With one stratum this is the plain
difference of means.

The test statistic uses, for 0/1 outcomes, the pooled variance under "no difference" (stable with
few events), and for continuous ones (revenue) the unpooled (Welch) variance; intervals always use
the unpooled one. Relative lift ``m_t / m_c - 1`` gets its variance by the delta method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from campaigns.stats.sequential import (
    cs_halfwidth,
    log_evalue_one_sided,
    log_evalue_two_sided,
    mixture_rho,
    standardized_sum,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Arms:
    """Per-stratum sums of one arm: arrays of equal length (one entry per stage)."""

    n: tuple[float, ...]
    total: tuple[float, ...]
    total_sq: tuple[float, ...]

    @classmethod
    def one(cls, n: float, total: float, total_sq: float | None = None) -> Arms:
        return cls((float(n),), (float(total),), (float(total if total_sq is None else total_sq),))


@dataclass(frozen=True)
class StratifiedEstimate:
    """Vectorized core result; every field broadcasts over leading axes (many rollouts at once)."""

    n: FloatArray  # recipients in strata where both arms have some
    mean_treatment: FloatArray
    mean_control: FloatArray
    difference: FloatArray
    variance: FloatArray  # unpooled, of the difference
    variance_null: FloatArray  # used by the test
    variance_treatment: FloatArray  # of the weighted treatment mean
    variance_control: FloatArray


def _arm_variance(n: FloatArray, total: FloatArray, total_sq: FloatArray, binary: bool) -> FloatArray:
    """Per-recipient variance: p(1-p) for a 0/1 outcome, the sample variance (n - 1) otherwise
    (the conventions of gbstats' ProportionStatistic and SampleMeanStatistic)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        if binary:
            return np.where(n > 0, np.clip(mean * (1.0 - mean), 0.0, None), 0.0)
        var = (total_sq - n * mean * mean) / (n - 1.0)
    return np.where(n > 1, np.maximum(var, 0.0), 0.0)


def stratified(
    n_t: npt.ArrayLike,
    total_t: npt.ArrayLike,
    sq_t: npt.ArrayLike,
    n_c: npt.ArrayLike,
    total_c: npt.ArrayLike,
    sq_c: npt.ArrayLike,
    binary: bool,
) -> StratifiedEstimate:
    """Arrays whose last axis is the stratum; leading axes are independent comparisons."""
    nt, tt, qt = (np.asarray(a, dtype=np.float64) for a in (n_t, total_t, sq_t))
    nc, tc, qc = (np.asarray(a, dtype=np.float64) for a in (n_c, total_c, sq_c))
    usable = (nt > 0) & (nc > 0)
    n = np.where(usable, nt + nc, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmh = np.where(usable, nt * nc / (nt + nc), 0.0)
        w = np.where(usable, cmh / cmh.sum(axis=-1, keepdims=True), 0.0)
        mt = np.where(usable, tt / nt, 0.0)
        mc = np.where(usable, tc / nc, 0.0)
        vt = np.where(usable, _arm_variance(nt, tt, qt, binary) / nt, 0.0)
        vc = np.where(usable, _arm_variance(nc, tc, qc, binary) / nc, 0.0)
        if binary:
            pooled = (tt + tc) / (nt + nc)
            v0 = np.where(usable, pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc), 0.0)
        else:
            v0 = vt + vc
    w2 = w * w
    mean_t = (w * mt).sum(axis=-1)
    mean_c = (w * mc).sum(axis=-1)
    return StratifiedEstimate(
        n=n,
        mean_treatment=mean_t,
        mean_control=mean_c,
        difference=mean_t - mean_c,
        variance=(w2 * (vt + vc)).sum(axis=-1),
        variance_null=(w2 * v0).sum(axis=-1),
        variance_treatment=(w2 * vt).sum(axis=-1),
        variance_control=(w2 * vc).sum(axis=-1),
    )


def relative_variance(est: StratifiedEstimate) -> FloatArray:
    """Delta-method variance of m_t / m_c (infinite when the control mean is 0)."""
    mc = est.mean_control
    with np.errstate(divide="ignore", invalid="ignore"):
        v = est.variance_treatment / (mc * mc) + est.mean_treatment**2 * est.variance_control / mc**4
    return np.where(mc != 0, v, np.inf)


@dataclass(frozen=True)
class Comparison:
    """One metric, treatment against comparison. ``status`` is "ok" or says why nothing can be said:
    "no_data" (an arm has no recipients), "zero_variance" (no arm varies: e.g. no events at all)."""

    status: str
    n_treatment: float
    n_control: float
    mean_treatment: float
    mean_control: float
    difference: float
    difference_low: float
    difference_high: float
    lift: float | None  # relative, m_t / m_c - 1; None when the control mean is 0
    lift_low: float | None
    lift_high: float | None
    log_e_two_sided: float  # evidence of any difference
    log_e_increase: float  # one-sided: treatment higher
    log_e_decrease: float  # one-sided: treatment lower
    alpha: float

    @property
    def threshold(self) -> float:
        return math.log(1.0 / self.alpha)

    @property
    def increased(self) -> bool:
        """Significantly higher, two-sided at alpha (the confidence sequence excludes 0 from above)."""
        return self.status == "ok" and self.difference > 0 and self.log_e_two_sided >= self.threshold

    @property
    def decreased(self) -> bool:
        return self.status == "ok" and self.difference < 0 and self.log_e_two_sided >= self.threshold

    @property
    def increased_one_sided(self) -> bool:
        return self.status == "ok" and self.log_e_increase >= self.threshold

    @property
    def decreased_one_sided(self) -> bool:
        return self.status == "ok" and self.log_e_decrease >= self.threshold

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return out


def _none_if_inf(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compare(treatment: Arms, control: Arms, *, binary: bool, alpha: float, tuning_n: float) -> Comparison:
    """Compare one metric; the verdict properties are valid under continuous monitoring."""
    est = stratified(
        treatment.n, treatment.total, treatment.total_sq, control.n, control.total, control.total_sq, binary
    )
    n_t = float(sum(treatment.n))
    n_c = float(sum(control.n))
    n = float(est.n)
    rho = mixture_rho(alpha, tuning_n)
    if n <= 0:
        status = "no_data"
    elif float(est.variance_null) <= 0 or float(est.variance) <= 0:
        status = "zero_variance"
    else:
        status = "ok"
    d = float(est.difference)
    if status != "ok":
        return Comparison(
            status, n_t, n_c, float(est.mean_treatment), float(est.mean_control), d,
            -math.inf, math.inf, None, None, None, 0.0, 0.0, 0.0, alpha,
        )  # fmt: skip
    s = standardized_sum(d, float(est.variance_null), n)
    half = float(cs_halfwidth(float(est.variance), n, alpha, rho))
    mc = float(est.mean_control)
    lift = float(est.mean_treatment) / mc - 1.0 if mc != 0 else None
    lift_half = float(cs_halfwidth(float(relative_variance(est)), n, alpha, rho))
    return Comparison(
        status=status,
        n_treatment=n_t,
        n_control=n_c,
        mean_treatment=float(est.mean_treatment),
        mean_control=mc,
        difference=d,
        difference_low=d - half,
        difference_high=d + half,
        lift=lift,
        lift_low=None if lift is None else _none_if_inf(lift - lift_half),
        lift_high=None if lift is None else _none_if_inf(lift + lift_half),
        log_e_two_sided=float(log_evalue_two_sided(s, n, rho)),
        log_e_increase=float(log_evalue_one_sided(s, n, rho)),
        log_e_decrease=float(log_evalue_one_sided(-s, n, rho)),
        alpha=alpha,
    )
