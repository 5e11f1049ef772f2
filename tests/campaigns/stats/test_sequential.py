"""The mixture martingale: values worked out by hand, the closed forms against numerical integrals,
and the property that matters: looking after every wave keeps the error rate under alpha."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from campaigns.stats import (
    Arms,
    compare,
    cs_halfwidth,
    log_evalue_one_sided,
    log_evalue_two_sided,
    mixture_rho,
)


def test_rho_by_hand() -> None:
    # -2 ln 0.05 = 5.991465; ln(6.991465) = 1.944691; (5.991465 + 1.944691) / 10000 = 7.936156e-4
    assert mixture_rho(0.05, 10_000) == pytest.approx(math.sqrt(7.936156e-4), rel=1e-6)
    with pytest.raises(ValueError):
        mixture_rho(0.0, 100)


def test_halfwidth_by_hand() -> None:
    # 500/10000 vs 400/10000: v = .05*.95/1e4 + .04*.96/1e4 = 8.59e-6, N = 20000
    # k = N rho^2 + 1 = 16.87231; sqrt(k) = 4.107592; ln(sqrt(k) / .05) = 4.408560
    # width = sqrt(v N) * sqrt(2 k ln(.) / (N^2 rho^2)) = 0.4144876 * 0.0216478 = 0.0089728
    rho = mixture_rho(0.05, 10_000)
    assert float(cs_halfwidth(8.59e-6, 20_000, 0.05, rho)) == pytest.approx(0.0089728, abs=2e-7)


@pytest.mark.parametrize("s, n", [(0.0, 100.0), (2.5, 400.0), (-3.0, 5000.0), (10.0, 20000.0)])
def test_closed_forms_equal_the_mixture_integrals(s: float, n: float) -> None:
    rho = 0.05

    def density(lam: float) -> float:
        return (
            math.exp(lam * s - lam * lam * n / 2)
            * math.exp(-lam * lam / (2 * rho * rho))
            / (rho * math.sqrt(2 * math.pi))
        )

    both, _ = integrate.quad(density, -np.inf, np.inf)
    positive, _ = integrate.quad(density, 0, np.inf)
    assert float(log_evalue_two_sided(s, n, rho)) == pytest.approx(math.log(both), rel=1e-7, abs=1e-9)
    assert float(log_evalue_one_sided(s, n, rho)) == pytest.approx(math.log(2 * positive), rel=1e-7, abs=1e-9)


def test_peeking_after_every_look_stays_under_alpha() -> None:
    """2,000 null streams of 400 looks (Bernoulli 5% both arms, 100 per arm per look): how many ever
    cross? The boundary holds for infinitely many looks, so the rate is well below alpha; a fixed
    z-test repeated at every look crosses in about a third of them."""
    rng = np.random.default_rng(7)
    streams, looks, per_look = 2000, 400, 100
    xt = rng.binomial(per_look, 0.05, size=(streams, looks)).cumsum(axis=1)
    xc = rng.binomial(per_look, 0.05, size=(streams, looks)).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    pt, pc = xt / n, xc / n
    pooled = (xt + xc) / (2 * n)
    v = pooled * (1 - pooled) * 2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(v > 0, (pt - pc) * np.sqrt(2 * n / v), 0.0)
    rho = mixture_rho(0.05, 20_000)
    sequential = (log_evalue_two_sided(s, 2 * n, rho) >= math.log(20)).any(axis=1).mean()
    naive = (np.abs(np.where(v > 0, (pt - pc) / np.sqrt(np.where(v > 0, v, 1)), 0)) > 1.96).any(axis=1).mean()
    assert sequential <= 0.05
    assert naive > 0.2


def test_cannot_compute_is_explicit() -> None:
    no_events = compare(Arms.one(1000, 0), Arms.one(1000, 0), binary=True, alpha=0.05, tuning_n=5000)
    assert no_events.status == "zero_variance"
    assert not (no_events.increased or no_events.decreased or no_events.increased_one_sided)
    assert no_events.to_json()["difference_low"] is None  # -inf is not JSON
    nobody = compare(Arms.one(0, 0), Arms.one(1000, 10), binary=True, alpha=0.05, tuning_n=5000)
    assert nobody.status == "no_data" and nobody.lift is None


def test_verdict_directions() -> None:
    better = compare(Arms.one(10_000, 500), Arms.one(10_000, 400), binary=True, alpha=0.05, tuning_n=10_000)
    assert better.increased and better.increased_one_sided and not better.decreased
    worse = compare(Arms.one(10_000, 400), Arms.one(10_000, 500), binary=True, alpha=0.05, tuning_n=10_000)
    assert worse.decreased and worse.decreased_one_sided and not worse.increased
