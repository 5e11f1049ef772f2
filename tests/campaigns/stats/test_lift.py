"""The primary metric's harm/benefit mixtures and the lift interval: known values, consistency, validity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from campaigns.stats.lift import GRID, WEIGHTS, lift_test, log_evalue, relative_sequence, sprt_log_lr


def test_one_stratum_by_hand() -> None:
    # 240 of 10,000 against 3,000 of 100,000: lift 0.024 / 0.03 - 1 = -20%; pooled p = 3240 / 110000,
    # v = p (1 - p) (1/10000 + 1/100000), information = 0.03^2 / v
    estimate, info = relative_sequence([10_000], [240], [240], [100_000], [3000], [3000], True)
    p = 3240 / 110_000
    v = p * (1 - p) * (1 / 10_000 + 1 / 100_000)
    assert float(estimate) == pytest.approx(-0.2, rel=1e-12)
    assert float(info) == pytest.approx(0.03**2 / v, rel=1e-12)


def test_strata_are_combined_by_information() -> None:
    # two stages with different baselines and the same relative effect: the estimate is that effect
    estimate, info = relative_sequence(
        [1000, 5000], [18, 135], [18, 135], [20_000, 20_000], [400, 600], [400, 600], True
    )
    single = [
        relative_sequence([n], [x], [x], [20_000], [c], [c], True)[1]
        for n, x, c in ((1000, 18, 400), (5000, 135, 600))
    ]
    assert float(info) == pytest.approx(float(sum(single)), rel=1e-12)
    assert float(estimate) == pytest.approx(-0.1, abs=1e-12)  # 1.8% vs 2%, 2.7% vs 3%


def test_log_evalue_by_hand() -> None:
    # harm direction: sum_k w_k exp(-g_k S - g_k^2 I / 2) with S = (estimate - 0) * I, g_k = 0.1 * GRID_k
    estimate, info = -0.15, 300.0
    expected = math.log(
        sum(
            w * math.exp(-0.1 * g * estimate * info - 0.5 * (0.1 * g) ** 2 * info)
            for g, w in zip(GRID, WEIGHTS, strict=True)
        )
    )
    assert float(log_evalue(estimate, info, 0.0, -1)) == pytest.approx(expected, rel=1e-12)
    assert float(log_evalue(estimate, 0.0, 0.0, -1)) == 0.0  # no information, no evidence


def test_sprt_by_hand() -> None:
    # known effect -0.2, estimate -0.2, information 100: 0.04 * 100 - 0.5 * 0.04 * 100 = 2
    assert float(sprt_log_lr(-0.2, 100.0, -0.2)) == pytest.approx(2.0)


# golden cases: (estimate, information) -> (worse, better, low, high) at alpha_harm 0.03, benefit 0.025
GOLDEN = [
    (-0.2, 286.2079, True, False, -0.37241, -0.031667),
    (0.0, 1000.0, False, False, None, None),
    (0.12, 2500.0, False, True, None, None),
    (-0.05, 50.0, False, False, None, None),
]


@pytest.mark.parametrize(("estimate", "info", "worse", "better", "low", "high"), GOLDEN)
def test_golden_verdicts_and_intervals(
    estimate: float, info: float, worse: bool, better: bool, low: float | None, high: float | None
) -> None:
    test = lift_test(estimate, info, alpha_harm=0.03, alpha_benefit=0.025)
    assert (test.worse, test.better) == (worse, better)
    assert test.lift_low is not None and test.lift_high is not None
    assert test.lift_low < estimate < test.lift_high
    if low is not None:
        assert test.lift_low == pytest.approx(low, abs=1e-4)
    if high is not None:
        assert test.lift_high == pytest.approx(high, abs=1e-4)


def test_the_interval_never_contradicts_the_verdict() -> None:
    rng = np.random.default_rng(3)
    for _ in range(400):
        estimate = float(rng.normal(0, 0.2))
        info = float(rng.uniform(1, 5000))
        test = lift_test(estimate, info, alpha_harm=0.03, alpha_benefit=0.025)
        assert test.lift_high is not None and test.lift_low is not None
        assert test.worse == (test.lift_high < 0), (estimate, info, test)
        assert test.better == (test.lift_low > 0), (estimate, info, test)


def test_the_issue_data_set_no_longer_shows_better_beside_an_interval_holding_zero() -> None:
    # a small stage whose lift looks large: any verdict comes with an interval on its side of zero
    estimate, info = relative_sequence(
        [400, 2000], [22, 80], [22, 80], [9000, 9000], [260, 300], [260, 300], True
    )
    test = lift_test(float(estimate), float(info), alpha_harm=0.03, alpha_benefit=0.025)
    assert test.lift_low is not None and test.lift_high is not None
    assert not test.better or test.lift_low > 0
    assert not test.worse or test.lift_high < 0


def test_harm_test_is_valid_when_looking_after_every_wave() -> None:
    # 20,000 A/A rollouts observed at 60 looks with growing information: the share ever rolled back at
    # alpha 0.03 stays below 0.03 (the mixture is a supermartingale under "no harm")
    rng = np.random.default_rng(11)
    increments = rng.uniform(5, 40, size=(20_000, 60))
    info = increments.cumsum(axis=1)
    score = (rng.normal(size=increments.shape) * np.sqrt(increments)).cumsum(axis=1)
    flagged = (log_evalue(score / info, info, 0.0, -1) >= math.log(1 / 0.03)).any(axis=1).mean()
    assert flagged < 0.03
    # and a -20% harm is caught by the same looks nearly always
    harmed = score - 0.2 * info
    assert (log_evalue(harmed / info, info, 0.0, -1) >= math.log(1 / 0.03)).any(axis=1).mean() > 0.99
