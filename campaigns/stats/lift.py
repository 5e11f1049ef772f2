"""Relative lift, tested one-sided and always valid: the primary metric's harm and benefit tests and
the lift interval, all three read off one sequence so they can never contradict each other.

**The sequence.** Per stratum (a rollout stage) ``s``: the difference of means ``d_s = m_t,s - m_c,s``
with variance ``v_s`` (pooled under "no difference" for 0/1 outcomes, Welch for continuous ones) and
the comparison mean ``m_s``. If treatment's mean is ``(1 + delta)`` times comparison's in every
stage, ``d_s ~ N(delta m_s, v_s)``, so with the information ``I = sum m_s^2 / v_s`` and the estimate
``delta_hat = sum m_s d_s / v_s / I``, the score ``S(delta0) = (delta_hat - delta0) I`` is a Brownian
motion in information time with drift ``delta - delta0``. Time is counted in statistical
information (the arms' variance), not in recipients, and evidence accumulates across stages
(stratified: stage-to-stage drift of the baseline does not leak into the comparison).

**Harm.** Against "treatment is not worse than ``delta0``" the likelihood ratio of a drop of ``g``
is ``exp(-g S(delta0) - g^2 I / 2)``. Mixing it over a grid of harmful effects ``GRID`` times the
"smallest harmful effect" (10% relative by default: 10%, 15%, 20%, 30%, 50%) gives a nonnegative
supermartingale under the null, so rolling back when it reaches ``1 / alpha_harm`` is valid however
often the evaluator looks (Ville's inequality). The mixture sits on the effects that matter instead
of on every effect from 0 to infinity, which is what makes it fast: it pays ``log(1 / weight)`` over
Wald's SPRT that knows the true effect, not a factor that grows with the sample.

**Benefit.** The mirror image, at ``alpha_benefit``.

**The lift interval** ``[low, high]`` is the set of ``delta0`` neither test rejects: ``high`` solves
``harm e-value at delta0 = 1 / alpha_harm``, ``low`` the benefit twin. Both e-values are monotone in
``delta0``, so "significantly worse" holds exactly when ``high < 0`` and "significantly better"
exactly when ``low > 0``: the interval shown beside a verdict is the verdict's own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import logsumexp

GRID: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 5.0)  # multiples of the smallest harmful effect
WEIGHTS: tuple[float, ...] = (0.3, 0.25, 0.2, 0.15, 0.1)
SMALLEST_EFFECT = 0.10

FloatArray = npt.NDArray[np.float64]


def effects(smallest: float) -> FloatArray:
    return np.asarray(GRID, dtype=np.float64) * smallest


def relative_sequence(
    n_t: npt.ArrayLike,
    total_t: npt.ArrayLike,
    sq_t: npt.ArrayLike,
    n_c: npt.ArrayLike,
    total_c: npt.ArrayLike,
    sq_c: npt.ArrayLike,
    binary: bool,
) -> tuple[FloatArray, FloatArray]:
    """(delta_hat, information); last axis = strata, leading axes broadcast (many rollouts at once).
    Strata where an arm is empty, the comparison mean is 0 or the variance is 0 carry no information."""
    nt, tt, qt = (np.asarray(a, dtype=np.float64) for a in (n_t, total_t, sq_t))
    nc, tc, qc = (np.asarray(a, dtype=np.float64) for a in (n_c, total_c, sq_c))
    with np.errstate(divide="ignore", invalid="ignore"):
        mt = tt / nt
        mc = tc / nc
        if binary:
            pooled = (tt + tc) / (nt + nc)
            v = pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc)
        else:
            vt = (qt - nt * mt * mt) / (nt - 1.0)
            vc = (qc - nc * mc * mc) / (nc - 1.0)
            v = np.maximum(vt, 0.0) / nt + np.maximum(vc, 0.0) / nc
        usable = (nt > (0 if binary else 1)) & (nc > (0 if binary else 1)) & (mc > 0) & (v > 0)
        usable &= np.isfinite(v)
        info_s = np.where(usable, mc * mc / v, 0.0)
        score_s = np.where(usable, mc * (mt - mc) / v, 0.0)
    info = info_s.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(info > 0, score_s.sum(axis=-1) / info, 0.0)
    return np.asarray(estimate, dtype=np.float64), np.asarray(info, dtype=np.float64)


def log_evalue(
    estimate: npt.ArrayLike, information: npt.ArrayLike, delta0: float | npt.ArrayLike, direction: int,
    smallest: float = SMALLEST_EFFECT,
) -> FloatArray:  # fmt: skip
    """log e-value against "lift is on the other side of delta0": direction -1 tests harm (lift below
    delta0), +1 benefit (lift above). 0 where there is no information."""
    est = np.asarray(estimate, dtype=np.float64)
    info = np.asarray(information, dtype=np.float64)
    score = (est - np.asarray(delta0, dtype=np.float64)) * info
    g = effects(smallest).reshape((-1,) + (1,) * score.ndim)
    log_w = np.log(np.asarray(WEIGHTS, dtype=np.float64)).reshape(g.shape)
    terms = log_w + direction * g * score - 0.5 * g * g * info
    out = logsumexp(terms, axis=0)
    return np.asarray(np.where(info > 0, out, 0.0), dtype=np.float64)


_LOG_WEIGHTS = tuple(math.log(w) for w in WEIGHTS)


def _log_e(estimate: float, information: float, delta0: float, direction: int, smallest: float) -> float:
    """`log_evalue` for one number, in plain floats (the interval's root finding calls it often)."""
    score = (estimate - delta0) * information
    terms = [
        lw + direction * g * smallest * score - 0.5 * (g * smallest) ** 2 * information
        for lw, g in zip(_LOG_WEIGHTS, GRID, strict=True)
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def sprt_log_lr(estimate: npt.ArrayLike, information: npt.ArrayLike, effect: float) -> FloatArray:
    """Wald's SPRT log likelihood ratio of a known relative effect (negative: harm) against none:
    the floor a test that knows the truth attains on the same sequence."""
    est = np.asarray(estimate, dtype=np.float64)
    info = np.asarray(information, dtype=np.float64)
    return np.asarray(effect * est * info - 0.5 * effect * effect * info, dtype=np.float64)


@dataclass(frozen=True)
class LiftTest:
    """The primary metric's verdicts and its lift interval, from one sequence."""

    status: str  # "ok" | "no_data"
    lift: float | None  # information-weighted relative lift m_t / m_c - 1
    lift_low: float | None
    lift_high: float | None
    information: float
    log_e_harm: float
    log_e_benefit: float
    alpha_harm: float
    alpha_benefit: float
    smallest_effect: float

    @property
    def worse(self) -> bool:
        return self.status == "ok" and self.log_e_harm >= math.log(1.0 / self.alpha_harm)

    @property
    def better(self) -> bool:
        return self.status == "ok" and self.log_e_benefit >= math.log(1.0 / self.alpha_benefit)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "worse": self.worse, "better": self.better}


def _bound(estimate: float, info: float, alpha: float, direction: int, smallest: float) -> float:
    """The delta0 where the one-sided e-value equals 1/alpha (monotone in delta0)."""
    target = math.log(1.0 / alpha)

    def gap(delta0: float) -> float:
        return _log_e(estimate, info, delta0, direction, smallest) - target

    step = max(smallest, 1.0 / math.sqrt(info))
    # harm (direction -1): the e-value grows with delta0, so the bound lies above the estimate
    sign = -direction
    far = estimate + sign * step
    while gap(far) < 0 and abs(far - estimate) < 1e6:
        step *= 2.0
        far = estimate + sign * step
    near = estimate - sign * 1e-12
    if gap(near) >= 0:  # rejected even at the estimate (cannot happen with weights < 1)
        return near
    return float(brentq(gap, min(near, far), max(near, far), xtol=1e-7))


def lift_test(
    estimate: float,
    information: float,
    *,
    alpha_harm: float,
    alpha_benefit: float,
    smallest: float = SMALLEST_EFFECT,
) -> LiftTest:
    if not information > 0 or not math.isfinite(information):
        return LiftTest("no_data", None, None, None, 0.0, 0.0, 0.0, alpha_harm, alpha_benefit, smallest)
    return LiftTest(
        status="ok",
        lift=estimate,
        lift_low=_bound(estimate, information, alpha_benefit, +1, smallest),
        lift_high=_bound(estimate, information, alpha_harm, -1, smallest),
        information=information,
        log_e_harm=_log_e(estimate, information, 0.0, -1, smallest),
        log_e_benefit=_log_e(estimate, information, 0.0, +1, smallest),
        alpha_harm=alpha_harm,
        alpha_benefit=alpha_benefit,
        smallest_effect=smallest,
    )
