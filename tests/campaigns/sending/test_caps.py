"""Frequency caps and quiet hours, the pure rules: instants worked out by hand, in several zones."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from campaigns.sending.caps import SendingRules, Verdict, judge, quiet_until, zone_of

NIGHT = SendingRules(quiet_start=time(21), quiet_end=time(8), default_timezone="Europe/Paris")
CAPS = SendingRules(max_per_24h=2, max_per_7d=5)
# 2026-12-06 22:30 UTC: 23:30 in Paris, 17:30 in New York, 07:30 (Dec 7) in Tokyo
LATE = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "until"),
    [
        ("Europe/Paris", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),  # 08:00 CET next morning
        ("Asia/Tokyo", datetime(2026, 12, 6, 23, 0, tzinfo=UTC)),  # 08:00 JST, half an hour away
        ("America/New_York", None),  # 17:30: not quiet
        ("", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),  # no zone: the workspace default (Paris)
        ("Mars/Olympus_Mons", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),  # unknown: the default
        ("Europe", datetime(2026, 12, 7, 7, 0, tzinfo=UTC)),  # a directory of zones: the default
    ],
)
def test_quiet_hours_end_at_the_local_morning(zone: str, until: datetime | None) -> None:
    verdict = judge(NIGHT, "campaign", LATE, 0, 0, zone)
    if until is None:
        assert verdict == Verdict("send")
    else:
        assert verdict.action == "defer" and verdict.defer_until == until
        assert verdict.reason.startswith("quiet hours: until 08:00 ")


def test_a_daytime_window_and_its_edges() -> None:
    paris = ZoneInfo("Europe/Paris")
    lunch = (time(12), time(14))
    assert quiet_until(datetime(2026, 12, 6, 11, 0, tzinfo=UTC), paris, *lunch) == datetime(
        2026, 12, 6, 13, 0, tzinfo=UTC
    )  # 12:00 Paris: quiet starts (inclusive)
    assert quiet_until(datetime(2026, 12, 6, 13, 0, tzinfo=UTC), paris, *lunch) is None  # 14:00: over
    assert quiet_until(datetime(2026, 12, 6, 7, 0, tzinfo=UTC), paris, time(21), time(8)) is None  # 08:00
    # 00:30 Paris, overnight window: ends the same calendar day
    assert quiet_until(datetime(2026, 12, 5, 23, 30, tzinfo=UTC), paris, time(21), time(8)) == datetime(
        2026, 12, 6, 7, 0, tzinfo=UTC
    )


def test_daylight_saving_the_morning_after_the_clocks_change() -> None:
    # 2026-03-29 01:00 UTC Paris goes from +01 to +02; at 22:00 UTC on the 28th it is 23:00 local
    until = quiet_until(datetime(2026, 3, 28, 22, 0, tzinfo=UTC), ZoneInfo("Europe/Paris"), time(21), time(8))
    assert until == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_caps_count_the_window_first_match_wins() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert judge(CAPS, "campaign", now, 1, 1, "UTC").allowed
    assert judge(CAPS, "flow", now, 2, 2, "UTC") == Verdict("skip", "frequency cap: 2 in 24 h")
    assert judge(CAPS, "campaign", now, 1, 5, "UTC") == Verdict("skip", "frequency cap: 5 in 7 days")
    both = SendingRules(max_per_24h=1, quiet_start=time(9), quiet_end=time(17))
    # inside quiet hours a capped contact is deferred, not skipped: the caps are looked at again then
    assert judge(both, "campaign", now, 3, 3, "UTC").action == "defer"


def test_transactional_mail_and_no_rules_are_never_held() -> None:
    assert judge(
        SendingRules(max_per_24h=1, quiet_start=time(0), quiet_end=time(23, 59)),
        "transactional",
        LATE,
        9,
        9,
        "UTC",
    ).allowed
    assert judge(SendingRules(), "campaign", LATE, 99, 99, "UTC").allowed
    with pytest.raises(ValueError, match="kind"):
        judge(CAPS, "newsletter", LATE, 0, 0, "UTC")


def test_rules_round_trip_and_zones() -> None:
    rules = SendingRules(
        max_per_24h=2, quiet_start=time(21), quiet_end=time(8), default_timezone="Asia/Tokyo"
    )
    assert SendingRules.from_json(rules.to_json()) == rules
    assert SendingRules.from_json(None) == SendingRules() and not SendingRules().active
    assert zone_of("Nowhere", "Also/Nowhere").key == "UTC"
