"""Always-valid sequential tests: the normal-mixture martingale (a mixture SPRT) and its confidence
sequence, in the asymptotic form of Waudby-Smith et al. (2021, "Time-uniform central limit theory").

An estimate ``d`` (a difference of means, or of proportions) with variance ``v`` from ``n``
observations in all is turned into the sum of standardized increments ``s = d * sqrt(n / v)``. Under
the null (true difference 0) and for large ``n``, ``s`` behaves like a Brownian motion in ``n``, and

    M(n) = 1 / sqrt(n rho^2 + 1) * exp(rho^2 s^2 / (2 (n rho^2 + 1)))

(the likelihood ratio of a N(0, rho^2) mixture of drifts against drift 0) is a nonnegative
martingale with mean 1. By Ville's inequality P(sup_n M(n) >= 1/alpha) <= alpha: rejecting when M
first reaches 1/alpha is valid however often one looks. Inverting it gives the confidence sequence

    d +- sqrt(v n) * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha))

which covers the truth at every n at once with probability >= 1 - alpha (two-sided).

One-sided ("significantly worse"): mixing over positive drifts only (a half-normal mixture) gives

    M+(n) = 2 / sqrt(n rho^2 + 1) * exp(rho^2 s^2 / (2 (n rho^2 + 1))) * Phi(rho s / sqrt(n rho^2 + 1))

also a martingale with mean 1, so rejecting at M+ >= 1/alpha spends all of alpha on one side.

``rho`` tunes where the boundary is tightest: `mixture_rho` picks it so the confidence sequence is
narrowest at ``n = tuning_n`` observations (the formula gbstats uses). Every function here takes
numpy arrays or floats and broadcasts, so the benchmark evaluates thousands of rollouts at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
ArrayLike = float | npt.ArrayLike


def mixture_rho(alpha: float, tuning_n: float) -> float:
    """The mixing standard deviation that makes the boundary tightest near `tuning_n` observations."""
    if not 0 < alpha < 1 or tuning_n <= 0:
        raise ValueError("alpha must be in (0, 1) and tuning_n > 0")
    log_a = -2.0 * np.log(alpha)
    return float(np.sqrt((log_a + np.log(log_a + 1.0)) / tuning_n))


def standardized_sum(estimate: ArrayLike, variance: ArrayLike, n: ArrayLike) -> FloatArray:
    """s = d * sqrt(n / v); 0 where the variance is not positive (nothing can be said)."""
    d = np.asarray(estimate, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = d * np.sqrt(nn / v)
    return np.where((v > 0) & (nn > 0) & np.isfinite(s), s, 0.0)


def log_evalue_two_sided(s: ArrayLike, n: ArrayLike, rho: float) -> FloatArray:
    """log M(n) of the normal mixture (evidence against "no difference", either direction)."""
    ss = np.asarray(s, dtype=np.float64)
    k = np.asarray(n, dtype=np.float64) * rho * rho + 1.0
    return np.asarray(-0.5 * np.log(k) + rho * rho * ss * ss / (2.0 * k), dtype=np.float64)


def log_evalue_one_sided(s: ArrayLike, n: ArrayLike, rho: float) -> FloatArray:
    """log M+(n) of the half-normal mixture: evidence that the drift is positive."""
    ss = np.asarray(s, dtype=np.float64)
    k = np.asarray(n, dtype=np.float64) * rho * rho + 1.0
    return np.asarray(
        np.log(2.0)
        - 0.5 * np.log(k)
        + rho * rho * ss * ss / (2.0 * k)
        + special.log_ndtr(rho * ss / np.sqrt(k)),
        dtype=np.float64,
    )


def cs_halfwidth(variance: ArrayLike, n: ArrayLike, alpha: float, rho: float) -> FloatArray:
    """Half-width of the two-sided confidence sequence for an estimate with this variance."""
    v = np.asarray(variance, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    k = nn * rho * rho + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.sqrt(v * nn) * np.sqrt(2.0 * k / (nn * nn * rho * rho) * np.log(np.sqrt(k) / alpha))
    return np.where((nn > 0) & (v >= 0), width, np.inf)
