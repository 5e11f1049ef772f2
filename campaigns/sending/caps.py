"""Frequency caps and quiet hours: whether a marketing email may go to a contact now (pure: numbers
and instants in, a frozen verdict out; campaigns.sending.cap_claims reads the ledger and writes it).

The workspace's sending rules (Settings -> Sending rules, `PUT /api/v1/settings/sending-rules`):

- `max_per_24h`, `max_per_7d`: at most that many marketing emails (campaign and flow sends, the send
  ledger's rows) per contact in any rolling 24 hours / 7 days. Off (None) by default.
- `quiet_start`, `quiet_end`: no marketing email between these local times (e.g. 21:00-08:00, across
  midnight when start > end), in the contact's own time zone. Off by default.
- `default_timezone`: the zone of contacts whose `timezone` is empty or unknown ("UTC").

Transactional and system mail (double opt-in confirmation, sign-in and password links, test sends)
is not in the ledger and is never capped nor held: `kind="transactional"` is always allowed.

The verdict for one contact, first match wins:

1. kind `transactional`, or no rule on           -> send
2. now is inside the contact's quiet hours       -> defer until they end (local time, in UTC);
                                                    the caps are looked at again then
3. sends in the last 24 h >= `max_per_24h`       -> skip, "frequency cap: N in 24 h"
4. sends in the last 7 days >= `max_per_7d`      -> skip, "frequency cap: N in 7 days"
5. otherwise                                     -> send
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KINDS = ("campaign", "flow", "transactional")
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)
Action = Literal["send", "skip", "defer"]


@dataclass(frozen=True)
class SendingRules:
    max_per_24h: int | None = None
    max_per_7d: int | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    default_timezone: str = "UTC"

    @property
    def caps_on(self) -> bool:
        return self.max_per_24h is not None or self.max_per_7d is not None

    @property
    def quiet_on(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None

    @property
    def active(self) -> bool:
        return self.caps_on or self.quiet_on

    @property
    def window(self) -> timedelta:
        """How far back the ledger must be read for the caps."""
        return WEEK if self.max_per_7d is not None else DAY

    def to_json(self) -> dict[str, Any]:
        return {
            "max_per_24h": self.max_per_24h,
            "max_per_7d": self.max_per_7d,
            "quiet_start": self.quiet_start.strftime("%H:%M") if self.quiet_start else None,
            "quiet_end": self.quiet_end.strftime("%H:%M") if self.quiet_end else None,
            "default_timezone": self.default_timezone,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> SendingRules:
        """From a stored (already validated) value; missing keys take their defaults."""
        value = value or {}

        def clock(key: str) -> time | None:
            text = value.get(key)
            return time.fromisoformat(text) if text else None

        return cls(
            max_per_24h=value.get("max_per_24h"),
            max_per_7d=value.get("max_per_7d"),
            quiet_start=clock("quiet_start"),
            quiet_end=clock("quiet_end"),
            default_timezone=value.get("default_timezone") or "UTC",
        )


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""  # why a skip or a deferral, in words (the ledger row's `error`)
    defer_until: datetime | None = None  # UTC: when the contact's quiet hours end

    @property
    def allowed(self) -> bool:
        return self.action == "send"


SEND = Verdict("send")


def known_zone(name: str) -> ZoneInfo | None:
    """The zone named so, or None for anything else ("Europe" is a directory: OSError)."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=4096)
def zone_of(name: str | None, default: str) -> ZoneInfo:
    """The contact's zone; an empty or unknown one is the workspace default's (then UTC)."""
    return known_zone(name or "") or known_zone(default) or ZoneInfo("UTC")


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours running at `now` in `tz` end (UTC), or None outside them. The window is
    [start, end) local time, across midnight when start > end."""
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=tz)
    # a local time skipped by a DST change: the first instant after it (fold keeps the wall time)
    ends_utc = ends.astimezone(UTC)
    return ends_utc if ends_utc > now else now + timedelta(minutes=1)


def judge(
    rules: SendingRules,
    kind: str,
    now: datetime,
    sent_24h: int,
    sent_7d: int,
    timezone: str | None,
) -> Verdict:
    """One contact's verdict (see the module's docstring for the order of the rules)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "transactional" or not rules.active:
        return SEND
    if rules.quiet_start is not None and rules.quiet_end is not None:
        tz = zone_of(timezone, rules.default_timezone)
        until = quiet_until(now, tz, rules.quiet_start, rules.quiet_end)
        if until is not None:
            local = until.astimezone(tz).strftime("%H:%M")
            return Verdict("defer", f"quiet hours: until {local} {tz.key}", until)
    if rules.max_per_24h is not None and sent_24h >= rules.max_per_24h:
        return Verdict("skip", f"frequency cap: {rules.max_per_24h} in 24 h")
    if rules.max_per_7d is not None and sent_7d >= rules.max_per_7d:
        return Verdict("skip", f"frequency cap: {rules.max_per_7d} in 7 days")
    return SEND
