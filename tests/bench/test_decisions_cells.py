"""bench/decisions.py's cells: any wave size and base rate by name, so the targets can be tried on streams
other than the 18 the bench runs by default; and the summary of the targets over the cells."""

from __future__ import annotations

import pytest

from bench.decisions import CELLS, summary
from bench.decisions_sim import Cell


def test_every_default_cell_parses_back_from_its_name() -> None:
    assert [Cell.parse(c.name) for c in CELLS] == CELLS


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("50k/2%/days", Cell(50_000, 0.02, "days")),
        ("2.5k/0.5%/hours", Cell(2_500, 0.005, "hours")),
        (" 3k/8%/days ", Cell(3_000, 0.08, "days")),
    ],
)
def test_other_cells(name: str, cell: Cell) -> None:
    assert Cell.parse(name) == cell
    assert Cell.parse(cell.name) == cell


@pytest.mark.parametrize(
    "name", ["20k/3%", "20k/3%/weeks", "x/3%/days", "20k/0%/days", "0.05k/3%/days", "20k/3%/days/x"]
)
def test_a_bad_cell_says_what_is_expected(name: str) -> None:
    with pytest.raises(ValueError, match="cell"):
        Cell.parse(name)


def test_the_summary_gives_each_target_its_range_over_the_cells_it_applies_to() -> None:
    checks = {
        "20k/3%/days": {"aa_wrong": 0.01, "aa_reach_60": 0.99, "forecast_can_60": True, "up10_within_22": 0.997,
                        "harm20_exposed_vs_oracle": 1.2},
        "5k/1%/hours": {"aa_wrong": 0.02, "aa_reach_60": 0.0, "forecast_can_60": False, "up10_within_22": 0.0,
                        "harm20_exposed_vs_oracle": 1.4},
    }  # fmt: skip
    lines = summary(checks).splitlines()
    assert "1.0%-2.0% over 2 cells" in lines[0]
    assert "99.0%-99.0% over 1 cells" in lines[1]  # the cell whose forecast says it cannot is left out
    assert "99.7%-99.7% over 1 cells" in lines[3]  # +10% within 22 waves is a target at 20k and 3% only
    assert "1.20x-1.40x over 2 cells" in lines[6]
    assert "clicks -20% rolled back or paused (>= 90%): -" in summary(checks)
