"""The cadence of a flow step's rollout: contacts reach the step continuously, so the planner and the
evaluator count one day of the step's sends as one "send" (`Cadence.kind == "flow"`, every 24 h).

A flow step's rollout has `series = "flow:<flow id>:<step id>"` (campaigns.flows.ai). Its daily rate,
the first of these that applies (the source is stated with it, and the forecast shows it):

1. the step's own `entries_per_day` in the flow's definition (the marketer's word);
2. the step's sends over the last 28 days, once the flow has been active for a week;
3. the trigger's last 28 days: events of that name (`event`), purchases (`purchase`), contacts
   created (`contact_created`, `contact_confirmed`), contacts with the date attribute over 365
   (`date_attribute`, yearly), or the segment's sendable size over 28 (`segment_joined`);
4. one a day, stated as an assumption (say `entries_per_day` to size the plan for more).

Reads models only: no flow engine, no Flask.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.rollout.sizing import Cadence
from models import Campaign, Contact, ContactEvent, Event, Flow, Send

PREFIX = "flow:"
DAYS = 28
SETTLED_DAYS = 7  # the flow's own history counts once it has been active this long


def parse_series(series: str | None) -> tuple[int, str] | None:
    """(flow id, step id) of a flow step's series, or None for any other series."""
    if not series or not series.startswith(PREFIX):
        return None
    flow, _, step = series[len(PREFIX) :].partition(":")
    return (int(flow), step) if flow.isdigit() and step else None


def step_series(flow_id: int, step_id: str) -> str:
    return f"{PREFIX}{flow_id}:{step_id}"


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def flow_cadence(session: Session, series: str | None, now: datetime | None = None) -> Cadence | None:
    """The step's daily cadence, or None when `series` is not a flow step's."""
    parsed = parse_series(series)
    if parsed is None:
        return None
    flow = session.get(Flow, parsed[0])
    if flow is None:
        return None
    now = _aware(now or datetime.now(UTC))
    stated = _stated(flow.definition or {}, parsed[1])
    if stated:
        return Cadence("flow", stated, 24.0, None, "the step's stated entries per day")
    since = now - timedelta(days=DAYS)
    if flow.activated_at is not None and _aware(flow.activated_at) <= now - timedelta(days=SETTLED_DAYS):
        days = min(DAYS, max((now - _aware(flow.activated_at)).days, 1))
        sent = session.scalar(
            sa.select(sa.func.count(Send.id))
            .join(Campaign, Campaign.id == Send.campaign_id)
            .where(Campaign.series == series, Send.queued_at >= now - timedelta(days=days))
        )
        if sent:
            per = max(1, round(sent / days))
            return Cadence("flow", per, 24.0, None, f"the step's sends over the last {days} days")
    found = _trigger_history(session, flow, since)
    if found is not None and found[0] > 0:
        return Cadence("flow", max(1, round(found[0])), 24.0, None, found[1])
    return Cadence(
        "flow", 1, 24.0, None, "no history yet: one a day assumed (state entries_per_day on the step)"
    )


def _stated(definition: dict[str, Any], step_id: str) -> int | None:
    for step in definition.get("steps") or []:
        if isinstance(step, dict) and step.get("id") == step_id:
            value = step.get("entries_per_day")
            return int(value) if isinstance(value, int) and value > 0 else None
    return None


def _trigger_history(session: Session, flow: Flow, since: datetime) -> tuple[float, str] | None:
    trigger = (flow.definition or {}).get("trigger") or {}
    kind = trigger.get("kind")
    if kind in ("event", "purchase"):
        name = trigger.get("name") if kind == "event" else "purchase"
        n = session.scalar(
            sa.select(sa.func.count(ContactEvent.id)).where(
                ContactEvent.name == name, ContactEvent.occurred_at >= since
            )
        )
        if kind == "purchase":
            n = (n or 0) + (
                session.scalar(
                    sa.select(sa.func.count(Event.id)).where(
                        Event.kind == "conversion", Event.occurred_at >= since
                    )
                )
                or 0
            )
        return (n or 0) / DAYS, f"the trigger's last {DAYS} days ({n or 0:,} {name} events)"
    if kind in ("contact_created", "contact_confirmed"):
        n = session.scalar(sa.select(sa.func.count(Contact.id)).where(Contact.created_at >= since)) or 0
        return n / DAYS, f"contacts created over the last {DAYS} days ({n:,})"
    if kind == "date_attribute" and trigger.get("yearly", True):
        attribute = str(trigger.get("attribute") or "")
        n = session.scalar(
            sa.select(sa.func.count(Contact.id)).where(
                Contact.attributes[attribute].as_string().is_not(None), Contact.status == "active"
            )
        )
        return (n or 0) / 365, f"{n or 0:,} contacts with {attribute!r}, once a year each"
    if kind == "segment_joined":
        from campaigns.audience.rules import count, segment_rules

        size = count(session, segment_rules(session, int(trigger["segment_id"])), sendable_only=True)
        return size / DAYS, f"the segment's {size:,} sendable contacts, joining over {DAYS} days (assumed)"
    return None
