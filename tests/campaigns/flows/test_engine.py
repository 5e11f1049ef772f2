"""The engine's pure rules: numbers and times worked out in advance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from campaigns.flows.definition import FlowDefinition, WaitStep
from campaigns.flows.engine import Complete, Exit, Goto, Send, Wait, decide, may_enter, wait_until

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def definition() -> FlowDefinition:
    return FlowDefinition.model_validate(
        {
            "trigger": {"kind": "event", "name": "added_to_cart"},
            "steps": [
                {"id": "wait", "type": "wait", "hours": 4},
                {"id": "opened", "type": "branch", "condition": {"event": "opened"}, "then": "bye"},
                {"id": "mail", "type": "send", "template_id": 1, "from_email": "a@example.com"},
                {"id": "bye", "type": "exit", "reason": "done early"},
            ],
            "exit_conditions": [{"event": "purchase"}],
        }
    )


def test_each_step_decides_as_documented() -> None:
    flow = definition()
    assert decide(flow, "wait", NOON, "UTC") == Wait(NOON + timedelta(hours=4), "opened")
    assert decide(flow, "opened", NOON, "UTC", condition_holds=True) == Goto("bye")
    assert decide(flow, "opened", NOON, "UTC", condition_holds=False) == Goto("mail")
    sent = decide(flow, "mail", NOON, "UTC")
    assert isinstance(sent, Send) and sent.step.template_id == 1 and sent.next_step == "bye"
    assert decide(flow, "bye", NOON, "UTC") == Exit("done early")
    assert decide(flow, None, NOON, "UTC") == Complete()
    assert decide(flow, "mail", NOON, "UTC", exit_event="purchase") == Exit("exit condition: purchase")
    with pytest.raises(ValueError, match="condition"):
        decide(flow, "opened", NOON, "UTC")


@pytest.mark.parametrize(
    ("wait", "zone", "expected"),
    [
        ({"days": 1}, "UTC", datetime(2026, 3, 11, 12, 0, tzinfo=UTC)),
        # 12:00 UTC is 08:00 in New York (EDT since 8 March): 09:00 local is 13:00 UTC the same day
        ({"until_local_time": "09:00"}, "America/New_York", datetime(2026, 3, 10, 13, 0, tzinfo=UTC)),
        # Tokyo is 21:00 at noon UTC: 09:00 local is tomorrow 00:00 UTC
        ({"until_local_time": "09:00"}, "Asia/Tokyo", datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),
        # a day, then the next 09:00 in London (GMT): 11 March 12:00 -> 12 March 09:00
        ({"days": 1, "until_local_time": "09:00"}, "Europe/London", datetime(2026, 3, 12, 9, 0, tzinfo=UTC)),
        ({"until_local_time": "09:00"}, "Not/AZone", datetime(2026, 3, 11, 9, 0, tzinfo=UTC)),  # as UTC
    ],
)
def test_waits_end_at_the_contacts_local_time(wait: dict[str, object], zone: str, expected: datetime) -> None:
    step = WaitStep.model_validate({"id": "w", "type": "wait", **wait})
    assert wait_until(step, NOON, zone) == expected


def test_re_entry_rules() -> None:
    day = timedelta(days=1)
    assert may_enter("never", None, None, False, NOON)
    assert not may_enter("never", None, NOON - 100 * day, False, NOON)
    assert not may_enter("after_days", 7, NOON - 6 * day, False, NOON)
    assert may_enter("after_days", 7, NOON - 7 * day, False, NOON)
    assert not may_enter("after_days", 7, NOON - 70 * day, True, NOON)  # one journey at a time
    assert may_enter("always", None, NOON, False, NOON)
    assert not may_enter("always", None, NOON, True, NOON)


def test_the_schema_refuses_what_cannot_run() -> None:
    base = definition().model_dump(mode="json")
    for broken, where in [
        ({**base, "steps": []}, "steps"),
        ({**base, "steps": [*base["steps"], base["steps"][0]]}, "is used by an earlier step"),
        ({**base, "steps": [{"id": "w", "type": "wait"}]}, "a wait needs"),
        ({**base, "trigger": {"kind": "inactivity", "days": 0}}, "trigger.inactivity.days"),
        ({**base, "steps": [{"id": "Bad Id", "type": "exit"}]}, "steps.0.exit.id"),
    ]:
        with pytest.raises(ValidationError) as caught:
            FlowDefinition.model_validate(broken)
        text = str(caught.value)
        assert where in text or where in ".".join(str(p) for p in caught.value.errors()[0]["loc"]), text
