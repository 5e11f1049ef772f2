"""Gates and freeze windows (pure): may the rollout leave its stage now?

A stage's gates (see `stages.Gates`) say how much evidence it needs before an advance: matured
recipients of the treatment arm (the comparison group accumulates over the stages and needs only the
policy's minimum per stage), events (human opens, human clicks, conversions...) and time
spent in the stage. Freeze windows are periods (for example a peak sales week) in which no advance is
allowed at all; pausing, killing and rolling back always are. A freeze window is either one period
(``{"start", "end", "why"}``) or a recurring one, in a time zone::

    {"repeat": "weekly", "weekday": 4, "start_time": "18:00", "hours": 62,
     "timezone": "Europe/Paris", "why": "weekend: nobody watches"}     # Friday 18:00 to Monday 08:00
    {"repeat": "daily", "start_time": "22:00", "hours": 9, "timezone": "UTC", "why": "night"}

(``weekday``: 0 is Monday.) `active_freeze` answers with the concrete occurrence that covers a moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.errors import InputError
from campaigns.rollout.stages import Gates

MEASURED_ARMS = ("treatment",)
# How far ahead of a gate an expected count must be for "the gate is met then" to hold in nearly every
# case (about 98%): an arm's size is drawn contact by contact, and a failed send does not count.
GATE_MARGIN_SD = 2.0


def gate_met(expected: float, gate: float) -> bool:
    """Whether `expected` matured recipients meet a gate of `gate` in nearly every case: an arm's size is
    binomial (its variance at most its mean, about the gate), so the expectation must clear the gate
    by `GATE_MARGIN_SD` standard deviations (the forecast's time per stage)."""
    return expected >= gate + GATE_MARGIN_SD * math.sqrt(max(gate, 0.0))


def sends_to_gather(recipients: float, per_send: float) -> int:
    """Sends of `per_send` expected recipients after which `recipients` more have been gathered in
    nearly every case (a hold's "about N more sends"), by the same margin as `gate_met`."""
    if recipients <= 0:
        return 0
    return math.ceil((recipients + GATE_MARGIN_SD * math.sqrt(recipients)) / per_send)


@dataclass(frozen=True)
class GateObservation:
    """What the stage has gathered so far (the send ledger and events of this stage)."""

    recipients_per_arm: Mapping[str, int] = field(default_factory=dict)
    events: int = 0
    stage_started_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "recipients_per_arm": dict(self.recipients_per_arm),
            "events": self.events,
            "stage_started_at": self.stage_started_at.isoformat() if self.stage_started_at else None,
        }


def unmet_gates(
    gates: Gates, observed: GateObservation, now: datetime, arms: Sequence[str] = MEASURED_ARMS
) -> list[str]:
    """Each gate not yet met, said in words; empty when the stage may be left."""
    unmet = []
    if gates.min_recipients_per_arm > 0:
        for arm in arms:
            have = int(observed.recipients_per_arm.get(arm, 0))
            if have < gates.min_recipients_per_arm:
                unmet.append(f"{arm} has {have} recipients, the stage needs {gates.min_recipients_per_arm}")
    if observed.events < gates.min_events:
        unmet.append(f"{observed.events} events, the stage needs {gates.min_events}")
    if gates.min_duration_hours > 0:
        if observed.stage_started_at is None:
            unmet.append("the stage has no start time")
        else:
            hours = (now - observed.stage_started_at).total_seconds() / 3600
            if hours < gates.min_duration_hours:
                unmet.append(f"{hours:.1f} h in the stage, it needs {gates.min_duration_hours:g} h")
    return unmet


@dataclass(frozen=True)
class FreezeWindow:
    start: datetime
    end: datetime
    why: str = ""

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "why": self.why}


REPEATS = ("daily", "weekly")


@dataclass(frozen=True)
class RecurringFreeze:
    repeat: str  # daily | weekly
    start_time: time
    hours: float
    timezone: str = "UTC"
    weekday: int | None = None  # weekly: 0 Monday .. 6 Sunday
    why: str = ""

    def occurrence(self, moment: datetime) -> FreezeWindow | None:
        """The occurrence covering `moment`, if one does."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        step = 7 if self.repeat == "weekly" else 1
        day = local.date()
        if self.weekday is not None:
            day -= timedelta(days=(day.weekday() - self.weekday) % 7)
        for _ in range(int(self.hours // (24 * step)) + 2):
            start = datetime.combine(day, self.start_time, tzinfo=zone).astimezone(UTC)
            window = FreezeWindow(start=start, end=start + timedelta(hours=self.hours), why=self.why)
            if window.covers(moment):
                return window
            day -= timedelta(days=step)
        return None

    def covers(self, moment: datetime) -> bool:
        return self.occurrence(moment) is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "repeat": self.repeat,
            "start_time": self.start_time.strftime("%H:%M"),
            "hours": self.hours,
            "timezone": self.timezone,
            "why": self.why,
        }
        if self.weekday is not None:
            out["weekday"] = self.weekday
        return out


def _recurring(item: Mapping[str, Any], here: str) -> RecurringFreeze:
    repeat = item.get("repeat")
    if repeat not in REPEATS:
        raise InputError(f"must be one of {', '.join(REPEATS)}", where=f"{here}.repeat")
    raw_time = item.get("start_time", "00:00")
    try:
        start_time = time.fromisoformat(str(raw_time))
    except ValueError:
        raise InputError(f"must be a time like 18:00, got {raw_time!r}", where=f"{here}.start_time") from None
    hours = item.get("hours")
    limit = 24 * 7 if repeat == "weekly" else 24
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours < limit:
        raise InputError(f"must be a number of hours above 0 and below {limit}", where=f"{here}.hours")
    zone = item.get("timezone") or "UTC"
    try:
        ZoneInfo(str(zone))
    except Exception:
        raise InputError(f"unknown time zone {zone!r}", where=f"{here}.timezone") from None
    weekday = item.get("weekday")
    if repeat == "weekly" and (isinstance(weekday, bool) or weekday not in range(7)):
        raise InputError("must be a day of the week, 0 (Monday) to 6 (Sunday)", where=f"{here}.weekday")
    why = item.get("why") or ""
    if not isinstance(why, str):
        raise InputError("must be text", where=f"{here}.why")
    return RecurringFreeze(
        repeat=repeat,
        start_time=start_time.replace(tzinfo=None),
        hours=float(hours),
        timezone=str(zone),
        weekday=weekday if repeat == "weekly" else None,
        why=why,
    )


def _moment(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"must be an ISO 8601 date-time, got {value!r}", where=where) from None
    else:
        raise InputError(f"must be an ISO 8601 date-time, got {value!r}", where=where)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_freeze_windows(
    raw: Any, where: str = "freeze_windows"
) -> tuple[FreezeWindow | RecurringFreeze, ...]:
    """Naive date-times are read as UTC."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InputError("must be a list of {start, end, why}", where=where)
    windows: list[FreezeWindow | RecurringFreeze] = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InputError("must be an object with start, end and why", where=here)
        if "repeat" in item:
            windows.append(_recurring(item, here))
            continue
        start, end = _moment(item.get("start"), f"{here}.start"), _moment(item.get("end"), f"{here}.end")
        if end <= start:
            raise InputError("end must be after start", where=f"{here}.end")
        why = item.get("why") or ""
        if not isinstance(why, str):
            raise InputError("must be text", where=f"{here}.why")
        windows.append(FreezeWindow(start=start, end=end, why=why))
    return tuple(windows)


def active_freeze(windows: Sequence[FreezeWindow | RecurringFreeze], now: datetime) -> FreezeWindow | None:
    """The window (for a recurring one, its occurrence) that covers `now`, if any."""
    for window in windows:
        found = window.occurrence(now) if isinstance(window, RecurringFreeze) else window
        if found is not None and found.covers(now):
            return found
    return None
