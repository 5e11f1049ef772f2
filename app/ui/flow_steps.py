"""A flow's definition in words, for its page and the list: the trigger, then each step numbered
("Wait 3 days, then until 10:00 in the contact's time zone")."""

from __future__ import annotations

from typing import Any


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_trigger(trigger: dict[str, Any], segments: dict[int, str] | None = None) -> str:
    kind = trigger.get("kind", "")
    if kind == "event":
        return f"When the event {trigger.get('name', '')!r} is posted"
    if kind == "segment_joined":
        segment_id = int(trigger.get("segment_id", 0))
        return f"When a contact joins segment {(segments or {}).get(segment_id, segment_id)!r}"
    if kind == "inactivity":
        return f"When a contact has not opened or clicked for {_plural(int(trigger.get('days', 0)), 'day')}"
    if kind == "date_attribute":
        offset = int(trigger.get("offset_days", 0))
        when = "on" if offset == 0 else f"{_plural(abs(offset), 'day')} {'before' if offset < 0 else 'after'}"
        yearly = ", every year" if trigger.get("yearly") else ""
        return f"{when.capitalize()} the date in attribute {trigger.get('attribute', '')!r}{yearly}"
    return {
        "contact_created": "When a contact is created",
        "contact_confirmed": "When a contact confirms their subscription (double opt-in)",
        "purchase": "When a contact makes a purchase",
    }.get(kind, kind)


def _wait(step: dict[str, Any]) -> str:
    parts = [_plural(int(step[k]), k[:-1]) for k in ("days", "hours", "minutes") if step.get(k)]
    text = "Wait " + ", ".join(parts) if parts else "Wait"
    if step.get("until_local_time"):
        text += (", then " if parts else " ") + f"until {step['until_local_time']} in the contact's time zone"
    return text


def _condition(condition: dict[str, Any]) -> str:
    if "segment_rules" in condition:
        return "the contact matches the segment rule"
    event = condition.get("event", "")
    known = {"opened": "they opened an email of this flow", "clicked": "they clicked in an email of this flow",
             "purchased": "they purchased"}  # fmt: skip
    return (known.get(event) or f"the event {event!r} happened") + " since entering"


def describe_step(step: dict[str, Any], templates: dict[int, str]) -> str:
    kind = step.get("type")
    if kind == "send":
        name = templates.get(int(step.get("template_id", 0)), f"template {step.get('template_id')} (missing)")
        return f"Send {name!r} from {step.get('from_email', '')}"
    if kind == "wait":
        return _wait(step)
    if kind == "branch":
        otherwise = step.get("otherwise") or "the next step"
        return f"If {_condition(step.get('condition', {}))}: go to {step.get('then')}, otherwise {otherwise}"
    return f"Exit ({step.get('reason', 'exit step')})"


def describe_steps(definition: dict[str, Any], templates: dict[int, str]) -> list[dict[str, Any]]:
    return [
        {
            "number": n,
            "id": s.get("id"),
            "type": s.get("type"),
            "text": describe_step(s, templates),
            "step": s,
        }
        for n, s in enumerate(definition.get("steps", []), start=1)
    ]
