"""One parametrized test over golden.json (inputs and outputs computed outside campaigns.stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from campaigns.stats import Arms, compare, srm_test

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())


def _arms(raw: dict[str, Any]) -> Arms:
    return Arms(tuple(raw["n"]), tuple(raw["total"]), tuple(raw["total_sq"]))


@pytest.mark.parametrize("case", GOLDEN["compare"], ids=[c["name"] for c in GOLDEN["compare"]])
def test_compare_matches_golden(case: dict[str, Any]) -> None:
    result = compare(
        _arms(case["treatment"]),
        _arms(case["control"]),
        binary=case["binary"],
        alpha=case["alpha"],
        tuning_n=case["tuning_n"],
    )
    expected = case["expected"]
    assert result.status == expected["status"]
    for key, value in expected.items():
        if key != "status":
            assert getattr(result, key) == pytest.approx(value, rel=1e-9, abs=1e-12), key
    if case["gbstats"]:  # GrowthBook's own sequential test gives the same intervals
        absolute, relative = case["gbstats"]["absolute"], case["gbstats"]["relative"]
        assert result.difference_low == pytest.approx(absolute["low"], rel=1e-9)
        assert result.difference_high == pytest.approx(absolute["high"], rel=1e-9)
        assert result.lift == pytest.approx(relative["estimate"], rel=1e-9)
        assert result.lift_low == pytest.approx(relative["low"], rel=1e-9, abs=1e-12)
        assert result.lift_high == pytest.approx(relative["high"], rel=1e-9)


@pytest.mark.parametrize("case", GOLDEN["srm"], ids=[str(c["observed"]) for c in GOLDEN["srm"]])
def test_srm_matches_golden(case: dict[str, Any]) -> None:
    result = srm_test(case["observed"], case["shares"])
    assert result.log_e == pytest.approx(case["log_e"], rel=1e-7, abs=1e-7)
    assert result.mismatch is case["mismatch"]
