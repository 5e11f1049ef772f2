"""Recurring freeze windows: the occurrence covering a moment, across a time zone and a weekend."""

from __future__ import annotations

from datetime import datetime

import pytest

from campaigns.errors import InputError
from campaigns.rollout.gates import active_freeze, parse_freeze_windows

WINDOWS = [
    {"repeat": "weekly", "weekday": 4, "start_time": "18:00", "hours": 62, "timezone": "Europe/Paris", "why": "weekend"},
    {"repeat": "daily", "start_time": "22:00", "hours": 9, "timezone": "UTC", "why": "night"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("moment", "covered_by"),
    [
        ("2026-11-27T16:59:00+00:00", None),  # Friday 17:59 in Paris
        ("2026-11-27T17:00:00+00:00", "weekend"),  # Friday 18:00 in Paris
        ("2026-11-30T06:59:00+00:00", "weekend"),  # Monday 07:59 in Paris
        ("2026-11-30T07:00:00+00:00", None),
        ("2026-12-02T23:00:00+00:00", "night"),
        ("2026-12-03T06:59:00+00:00", "night"),  # the night that began the day before
        ("2026-12-03T07:00:00+00:00", None),
    ],
)
def test_the_occurrence_covering_a_moment(moment: str, covered_by: str | None) -> None:
    found = active_freeze(parse_freeze_windows(WINDOWS), datetime.fromisoformat(moment))
    assert (found.why if found else None) == covered_by


def test_recurring_windows_round_trip_and_name_the_bad_field() -> None:
    parsed = parse_freeze_windows(WINDOWS)
    assert parse_freeze_windows([w.to_json() for w in parsed]) == parsed
    with pytest.raises(InputError) as bad:
        parse_freeze_windows([{"repeat": "weekly", "start_time": "18:00", "hours": 5}])
    assert bad.value.where == "freeze_windows[0].weekday"
    with pytest.raises(InputError) as bad:
        parse_freeze_windows([{"repeat": "daily", "start_time": "25:00", "hours": 5}])
    assert bad.value.where == "freeze_windows[0].start_time"
