"""SRM, exact rare-event tests (guardrails, caps) and histogram quantiles, with values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from campaigns.stats import cap_test, histogram_quantile, log_evalue_rate_ratio, rate_ratio_test, srm_test


def test_srm_by_hand() -> None:
    # two arms, shares 1/2 each, prior Dirichlet(1, 1) (concentration 2): the Bayes factor is
    # x1! x2! / (n + 1)! * 2^n. (3, 1): 6 / 120 * 16 = 0.8; (10, 0): 10! / 11! * 1024 = 1024 / 11.
    assert srm_test([3, 1], [1, 1], concentration=2.0).log_e == pytest.approx(math.log(0.8), rel=1e-9)
    ten = srm_test([10, 0], [1, 1], concentration=2.0, alpha=0.05)
    assert ten.log_e == pytest.approx(math.log(1024 / 11), rel=1e-9)
    assert ten.mismatch and ten.p_value == pytest.approx(11 / 1024)
    # stages multiply: the same counts seen in two stages give twice the log evidence
    twice = srm_test([[10, 0], [10, 0]], [[1, 1], [1, 1]], concentration=2.0)
    assert twice.log_e == pytest.approx(2 * math.log(1024 / 11), rel=1e-9)


def test_srm_ten_percent_of_treatment_lost_accumulates_over_stages() -> None:
    # 1% stage: 180 of the expected 200 treatment recipients arrive per wave of 20,000; later stages
    # bring the evidence that one wave at 1% cannot
    one_stage = srm_test([[180, 18820, 1000]], [[100, 9400, 500]])
    assert not one_stage.mismatch
    stages = [[100, 9400, 500], [500, 9000, 500], [1000, 8500, 500], [2500, 7000, 500]]
    observed = [[0.9 * s[0] * 4, s[1] * 4, s[2] * 4] for s in stages]  # 20,000 per stage, 10% lost
    assert srm_test(observed, stages).mismatch
    assert not srm_test([[s[0] * 4, s[1] * 4, s[2] * 4] for s in stages], stages).mismatch


def test_srm_is_valid_when_looking_after_every_wave() -> None:
    # 4,000 A/A rollouts, 40 looks each (waves of 2,000 at shares 10/85/5%): the share ever flagged at
    # alpha = 0.05 stays below 0.05 (Ville), where a chi-square test repeated at p < 0.05 is far above
    rng = np.random.default_rng(7)
    shares = np.array([0.10, 0.85, 0.05])
    counts = rng.multinomial(2000, shares, size=(4000, 40)).cumsum(axis=1)
    from campaigns.stats.srm import log_bayes_factor

    flagged = (log_bayes_factor(counts, shares) >= math.log(1 / 0.05)).any(axis=1).mean()
    assert flagged < 0.05
    expected = counts.sum(axis=-1, keepdims=True) * shares
    chi2 = ((counts - expected) ** 2 / expected).sum(axis=-1)
    assert (chi2 > 5.991).any(axis=1).mean() > 0.15  # df 2, p < 0.05 at some look


def test_srm_edge_cases() -> None:
    assert srm_test([0, 0], [1, 1]).status == "no_data"
    assert not srm_test([0, 0], [1, 1]).mismatch
    # recipients in an arm that should have none (exposure 0) is a mismatch outright
    stray = srm_test([3, 1000, 50], [0, 9500, 500])
    assert stray.mismatch and stray.p_value == 0.0
    with pytest.raises(ValueError):
        srm_test([1, 2], [1])


def test_rate_ratio_by_hand() -> None:
    # equal arms (q = 1/2), 10 events in treatment, none in comparison, one alternative theta = 2:
    # LR = (2 / (0.5 * 2 + 0.5))^10 = (4/3)^10, log = 10 ln(4/3) = 2.876821
    assert float(log_evalue_rate_ratio([10], [1000], [0], [1000], thetas=(2.0,))) == pytest.approx(
        2.876821, rel=1e-6
    )
    # the same split in two strata gives the same evidence (order-free)
    assert float(
        log_evalue_rate_ratio([4, 6], [500, 500], [0, 0], [500, 500], thetas=(2.0,))
    ) == pytest.approx(2.876821, rel=1e-6)
    # a stratum with one arm empty carries no information
    assert float(log_evalue_rate_ratio([3], [0], [5], [100], thetas=(2.0,))) == 0.0


def test_rare_events_do_not_trip_the_guardrail() -> None:
    # 2 complaints among 500 treatment recipients against 13 among 45,000: z = 4.8, yet ordinary
    assert not rate_ratio_test((2,), (500,), (13,), (45_000,), alpha=0.01).worse
    harmful = rate_ratio_test(
        (12, 30), (2000, 5000), (36, 27), (36_000, 27_000), alpha=0.01
    )  # 3x unsubscribes
    assert harmful.worse and harmful.rate_ratio == pytest.approx(
        42 / ((48 * 2000 / 38_000) + (57 * 5000 / 32_000))
    )


def test_guardrail_stays_valid_when_looking_after_every_wave() -> None:
    """3,000 null streams, 60 looks each, events at 0.2% with 500 treatment and 9,000 comparison recipients
    per wave: the share of streams ever flagged at alpha = 0.01 stays under 1%."""
    rng = np.random.default_rng(11)
    xt = rng.binomial(500, 0.002, size=(3000, 60)).cumsum(axis=1)
    xc = rng.binomial(9000, 0.002, size=(3000, 60)).cumsum(axis=1)
    n = np.arange(1, 61)
    flagged = np.zeros(3000, dtype=bool)
    for look in range(60):
        log_e = log_evalue_rate_ratio(
            xt[:, look : look + 1], 500.0 * n[look], xc[:, look : look + 1], 9000.0 * n[look]
        )
        flagged |= log_e >= math.log(100)
    assert flagged.mean() <= 0.01


def test_cap_only_when_significantly_above() -> None:
    # 40 complaints in 10,000 (0.4%) against a 0.1% cap
    broken = cap_test(40, 10_000, 0.001, alpha=0.01)
    assert broken.rate_treatment == 0.004 and broken.worse and broken.rate_ratio == pytest.approx(4.0)
    assert not cap_test(12, 10_000, 0.001, alpha=0.01).worse  # 0.12%: noise
    assert not cap_test(0, 10_000, 0.001, alpha=0.01).worse
    assert cap_test(0, 0, 0.001, alpha=0.01).status == "no_data"
    # by hand, one alternative: theta = 2, x = 3 of n = 1000, cap 0.001:
    # log LR = 3 ln 2 + 997 ln(0.998 / 0.999) = 2.079442 - 0.998499 = 1.080943
    from campaigns.stats import log_evalue_above_cap

    assert float(log_evalue_above_cap(3, 1000, 0.001, thetas=(2.0,))) == pytest.approx(1.080943, rel=1e-5)


def test_histogram_quantile_is_the_upper_edge() -> None:
    edges = [10, 20, 50, float("inf")]
    assert histogram_quantile(edges, [90, 4, 5, 1], 0.95) == 50  # 90 + 4 = 94 < 95
    assert histogram_quantile(edges, [95, 4, 0, 1], 0.95) == 10
    assert histogram_quantile(edges, [0, 0, 0, 0], 0.95) is None
    assert histogram_quantile(edges, [0, 0, 0, 3], 0.5) == float("inf")


def test_rate_ratio_mixture_weights() -> None:
    import math

    from campaigns.stats.rates import log_evalue_rate_ratio

    args = ([30.0], [1000.0], [20.0], [1000.0])
    uniform = float(log_evalue_rate_ratio(*args, thetas=(1.25, 2.0)))
    same = float(log_evalue_rate_ratio(*args, thetas=(1.25, 2.0), weights=(0.5, 0.5)))
    assert same == pytest.approx(uniform)
    at_125 = float(log_evalue_rate_ratio(*args, thetas=(1.25,)))
    at_2 = float(log_evalue_rate_ratio(*args, thetas=(2.0,)))
    leaning = float(log_evalue_rate_ratio(*args, thetas=(1.25, 2.0), weights=(0.9, 0.1)))
    assert leaning == pytest.approx(math.log(0.9 * math.exp(at_125) + 0.1 * math.exp(at_2)))
