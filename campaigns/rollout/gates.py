"""Gates and freeze windows (pure): may the rollout leave its stage now?

A stage's gates (see `stages.Gates`) say how much evidence it needs before an advance: matured
recipients of the treatment arm (the comparison group accumulates over the stages and needs only the
policy's minimum per stage), events (human opens, human clicks, conversions...) and time
spent in the stage. Freeze windows are periods (for example a peak sales week) in which no advance is
allowed at all; pausing, killing and rolling back always are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from campaigns.errors import InputError
from campaigns.rollout.stages import Gates

MEASURED_ARMS = ("treatment",)


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


def parse_freeze_windows(raw: Any, where: str = "freeze_windows") -> tuple[FreezeWindow, ...]:
    """Naive date-times are read as UTC."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InputError("must be a list of {start, end, why}", where=where)
    windows = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InputError("must be an object with start, end and why", where=here)
        start, end = _moment(item.get("start"), f"{here}.start"), _moment(item.get("end"), f"{here}.end")
        if end <= start:
            raise InputError("end must be after start", where=f"{here}.end")
        why = item.get("why") or ""
        if not isinstance(why, str):
            raise InputError("must be text", where=f"{here}.why")
        windows.append(FreezeWindow(start=start, end=end, why=why))
    return tuple(windows)


def active_freeze(windows: Sequence[FreezeWindow], now: datetime) -> FreezeWindow | None:
    return next((w for w in windows if w.covers(now)), None)
