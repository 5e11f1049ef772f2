"""SRM, caps on absolute rates and histogram quantiles, with values worked out by hand."""

from __future__ import annotations

import math

import pytest

from campaigns.stats import histogram_quantile, rate_above_cap, srm_test


def test_srm_by_hand() -> None:
    # 5000 vs 4500 expected 4750 each: chi2 = 2 * 250^2 / 4750 = 26.3158; df 1: p = erfc(sqrt(chi2 / 2))
    result = srm_test([5000, 4500], [0.5, 0.5])
    assert result.chi2 == pytest.approx(26.315789, rel=1e-6)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(26.315789 / 2)), rel=1e-5)
    assert result.mismatch


def test_srm_ten_percent_of_treatment_lost() -> None:
    # treatment 10%, 1000 expected of 10000 but 900 arrive: (100^2/910 + 100^2/8190)... p < 0.001
    assert srm_test([900, 9100], [1000, 9000]).mismatch
    assert not srm_test([995, 9005], [1000, 9000]).mismatch


def test_srm_edge_cases() -> None:
    assert srm_test([0, 0], [1, 1]).status == "no_data"
    assert not srm_test([0, 0], [1, 1]).mismatch
    # recipients in an arm that should have none (exposure 0) is a mismatch outright
    stray = srm_test([3, 1000, 50], [0, 9500, 500])
    assert stray.mismatch and stray.p_value == 0.0
    with pytest.raises(ValueError):
        srm_test([1, 2], [1])


def test_cap_broken_only_when_significantly_above() -> None:
    # 40 complaints in 10000 (0.4%) against a 0.1% cap: s = 0.003 * sqrt(1e4 / (0.001 * 0.999)) = 9.49
    broken = rate_above_cap(40, 10_000, 0.001, alpha=0.01, tuning_n=20_000)
    assert broken.rate == 0.004 and broken.broken
    assert not rate_above_cap(12, 10_000, 0.001, alpha=0.01, tuning_n=20_000).broken  # 0.12%: noise
    assert not rate_above_cap(0, 10_000, 0.001, alpha=0.01, tuning_n=20_000).broken
    assert rate_above_cap(0, 0, 0.001, alpha=0.01, tuning_n=20_000).status == "no_data"


def test_histogram_quantile_is_the_upper_edge() -> None:
    edges = [10, 20, 50, float("inf")]
    assert histogram_quantile(edges, [90, 4, 5, 1], 0.95) == 50  # 90 + 4 = 94 < 95
    assert histogram_quantile(edges, [95, 4, 0, 1], 0.95) == 10
    assert histogram_quantile(edges, [0, 0, 0, 0], 0.95) is None
    assert histogram_quantile(edges, [0, 0, 0, 3], 0.5) == float("inf")
