"""What an entry does next: pure decisions over a definition, a step and the facts the caller looked
up. No database here (campaigns.flows.scheduler applies the decisions).

The rules, in order, for an entry that is due at step S (first match wins):

1. An exit condition's event has happened since entry -> `Exit(reason)`.
2. S is `exit` -> `Exit(S.reason)`.
3. S is `send` -> `Send(S)`; the caller writes a ledger row and moves the entry to the next step,
   due at once (or `Complete` after the last step).
4. S is `wait` -> `Wait(due_at, next)`: due at `now` + the duration, then at the next `until_local_time`
   in the contact's time zone; the entry then resumes at the step after the wait.
5. S is `branch` -> `Goto(then)` when the condition holds, else `Goto(otherwise or the next step)`.

A `Goto` is followed at once (branches only jump forward, so this ends), up to `MAX_HOPS` steps per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.flows.definition import BranchStep, ExitStep, FlowDefinition, SendStep, WaitStep

MAX_HOPS = 60


@dataclass(frozen=True)
class Send:
    step: SendStep
    next_step: str | None  # None: the journey completes once the send is written


@dataclass(frozen=True)
class Wait:
    due_at: datetime
    next_step: str | None


@dataclass(frozen=True)
class Goto:
    step_id: str | None  # None: past the last step


@dataclass(frozen=True)
class Exit:
    reason: str


@dataclass(frozen=True)
class Complete:
    pass


Action = Send | Wait | Goto | Exit | Complete


def zone(name: str) -> ZoneInfo:
    """The contact's zone; UTC for an unknown or empty name (a bad record never stops a flow)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def wait_until(step: WaitStep, now: datetime, timezone: str) -> datetime:
    """`now` plus the wait's duration, then on to the next HH:MM in the contact's zone (if set)."""
    due = now + timedelta(seconds=step.seconds)
    if step.until_local_time is None:
        return due
    hour, minute = (int(part) for part in step.until_local_time.split(":"))
    tz = zone(timezone)
    local = due.astimezone(tz)
    target = datetime.combine(local.date(), time(hour, minute), tz)
    if target < local:
        target = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tz)
    return target.astimezone(due.tzinfo)


def decide(
    definition: FlowDefinition,
    step_id: str | None,
    now: datetime,
    timezone: str,
    *,
    exit_event: str | None = None,
    condition_holds: bool | None = None,
) -> Action:
    """The next action at `step_id`. `exit_event`: an exit condition's event seen since entry.
    `condition_holds`: for a branch step, whether its condition holds (the caller evaluated it)."""
    if exit_event is not None:
        return Exit(f"exit condition: {exit_event}")
    if step_id is None:
        return Complete()
    step = definition.step(step_id)
    after = definition.after(step_id)
    if isinstance(step, ExitStep):
        return Exit(step.reason)
    if isinstance(step, SendStep):
        return Send(step, after)
    if isinstance(step, WaitStep):
        return Wait(wait_until(step, now, timezone), after)
    if isinstance(step, BranchStep):
        if condition_holds is None:
            raise ValueError(f"branch {step_id} needs its condition evaluated")
        return Goto(step.then if condition_holds else (step.otherwise or after))
    raise AssertionError(step)


def may_enter(
    rule: str, days: int | None, last_entered_at: datetime | None, active: bool, now: datetime
) -> bool:
    """Re-entry: `never` (one journey per contact), `after_days` (the last entry at least N days ago
    and none active), `always` (whenever no journey is active: one journey at a time per contact)."""
    if last_entered_at is None:
        return True
    if active or rule == "never":
        return False
    if rule == "after_days":
        return now - last_entered_at >= timedelta(days=days or 0)
    return True
