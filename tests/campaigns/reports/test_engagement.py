"""Engagement over time and per-segment results: numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.reports.engagement import Recipient, by_segment, horizon, over_time

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def person(arm: str, opened: float | None, clicked: float | None = None, converted: float | None = None,
           revenue: float = 0.0, segments: tuple[str, ...] = ()) -> Recipient:  # fmt: skip
    return Recipient(arm, T0, opened, clicked, converted, revenue, segments)


PEOPLE = [
    person("treatment", 0.5, 1.5, 3.0, 40.0, ("UK",)),
    person("treatment", 5.0, None, None, 0.0, ("UK", "Gold")),
    person("treatment", None),
    person("treatment", 30.0, 30.5, None, 0.0, ("Gold",)),
    person("control", 2.5, None, None, 0.0, ("UK",)),
    person("control", None),
]


def test_cumulative_shares_by_hour_since_the_send() -> None:
    curves = {c.arm: c for c in over_time(PEOPLE, (1, 4, 24, 48))}
    treated = curves["treatment"]
    assert treated.n == 4
    assert treated.shares["opened"] == (0.25, 0.25, 0.5, 0.75)
    assert treated.shares["clicked"] == (0.0, 0.25, 0.25, 0.5)
    assert treated.shares["converted"] == (0.0, 0.25, 0.25, 0.25)
    assert curves["control"].shares["opened"] == (0.0, 0.5, 0.5, 0.5)


def test_the_horizon_stops_at_the_age_of_the_oldest_send_and_where_curves_go_flat() -> None:
    assert horizon(PEOPLE, T0 + timedelta(hours=5)) == (1, 2, 3, 4)
    # weeks later: up to the first plotted hour after the latest event (30.5 h), flat beyond
    assert horizon(PEOPLE, T0 + timedelta(days=30)) == (1, 2, 3, 4, 6, 8, 12, 18, 24, 36)
    assert horizon(PEOPLE, T0 + timedelta(minutes=5)) == (1,)
    assert horizon([], T0) == ()


def test_results_per_report_segment_and_arm() -> None:
    rows = {(r.segment, r.arm): r for r in by_segment(PEOPLE)}
    uk = rows[("UK", "treatment")]
    assert (uk.sent, uk.opened, uk.clicked, uk.converted, uk.revenue) == (2, 2, 1, 1, 40.0)
    assert rows[("Gold", "treatment")].rate("clicked") == 0.5
    assert rows[("UK", "control")].rate("opened") == 1.0
    assert ("Gold", "control") not in rows
