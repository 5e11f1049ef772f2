"""A flow's definition: one pydantic schema that validates it (errors name the step and the field,
e.g. `definition.steps.2.wait.hours`) and is the API's documented request schema. Pure: no Flask,
no SQLAlchemy.

A flow is a trigger, then steps run in order from the first. Each step has a stable `id` (what an
entry's place refers to, and what a branch jumps to). A branch may only jump forward, so every
journey ends. After the last step the journey is `completed`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campaigns.errors import has_nul

STEP_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
EVENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
MAX_STEPS = 50
MAX_WAIT_DAYS = 366
PURCHASE = "purchase"  # the event name a purchase is recorded under (conversions, the events API)


class _Strict(BaseModel):
    """Strict types, no unknown fields, no NUL bytes (as app.api.schema.ApiModel)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, str_max_length=100_000)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("must not contain NUL bytes")
        return value


# -- triggers ---------------------------------------------------------------------------------------


class ContactCreated(_Strict):
    kind: Literal["contact_created"]


class ContactConfirmed(_Strict):
    """Double opt-in: the contact followed the confirmation link."""

    kind: Literal["contact_confirmed"]


class CustomEvent(_Strict):
    """An event posted to `POST /api/v1/contact-events` (`browsed`, `added_to_cart`, any name)."""

    kind: Literal["event"]
    name: str = Field(pattern=EVENT_NAME)


class Purchase(_Strict):
    """A purchase: a conversion, or an event named `purchase` posted to the API."""

    kind: Literal["purchase"]


class SegmentJoined(_Strict):
    """Found in the segment by the periodic check (once per contact unless re-entry allows more)."""

    kind: Literal["segment_joined"]
    segment_id: int = Field(ge=1, le=2**63 - 1)


class Inactivity(_Strict):
    """No human open or click for `days` days (and at least one email sent before that)."""

    kind: Literal["inactivity"]
    days: int = Field(ge=1, le=3650)


class DateAttribute(_Strict):
    """A date held in a contact attribute (`birthday`, `renewal_date`): enters `offset_days` from it
    (negative: before), every year when `yearly`."""

    kind: Literal["date_attribute"]
    attribute: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    offset_days: int = Field(0, ge=-365, le=365)
    yearly: bool = False


Trigger = Annotated[
    ContactCreated | ContactConfirmed | CustomEvent | Purchase | SegmentJoined | Inactivity | DateAttribute,
    Field(discriminator="kind"),
]
EVENT_TRIGGERS = ("contact_created", "contact_confirmed", "event", "purchase")
TIME_TRIGGERS = ("segment_joined", "inactivity", "date_attribute")


# -- steps ------------------------------------------------------------------------------------------


class SendStep(_Strict):
    id: str = Field(pattern=STEP_ID)
    type: Literal["send"]
    template_id: int = Field(ge=1, le=2**63 - 1)
    from_email: str = Field(min_length=3, max_length=320)
    from_name: str = Field("", max_length=200)
    ai_content: bool = Field(
        False,
        description="AI content behind a rollout (one per step, `series` flow:<flow>:<step>); "
        "false: the control content to everyone",
    )
    entries_per_day: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="contacts expected to reach this step per day, for sizing its rollout's plan; "
        "default: the flow's or its trigger's last 28 days",
    )

    @field_validator("from_email")
    @classmethod
    def _address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("not an email address")
        return value


class WaitStep(_Strict):
    """Wait a duration, then (if `until_local_time` is set) until the next HH:MM in the contact's
    own time zone."""

    id: str = Field(pattern=STEP_ID)
    type: Literal["wait"]
    days: int = Field(0, ge=0, le=MAX_WAIT_DAYS)
    hours: int = Field(0, ge=0, le=MAX_WAIT_DAYS * 24)
    minutes: int = Field(0, ge=0, le=MAX_WAIT_DAYS * 24 * 60)
    until_local_time: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @model_validator(mode="after")
    def _something(self) -> WaitStep:
        if not (self.days or self.hours or self.minutes or self.until_local_time):
            raise ValueError("a wait needs days, hours, minutes or until_local_time")
        if self.seconds > MAX_WAIT_DAYS * 86_400:
            raise ValueError(f"a wait is at most {MAX_WAIT_DAYS} days")
        return self

    @property
    def seconds(self) -> int:
        return self.days * 86_400 + self.hours * 3600 + self.minutes * 60


class EventCondition(_Strict):
    """True when, since the contact entered the flow, they opened / clicked an email of this flow, or
    purchased (a conversion or a `purchase` event), or any named event happened."""

    event: Literal["opened", "clicked", "purchased"] | Annotated[str, Field(pattern=EVENT_NAME)]


class SegmentCondition(_Strict):
    """True when the contact matches the rule (campaigns.audience.rules; checked by the engine)."""

    segment_rules: dict[str, Any]


class BranchStep(_Strict):
    id: str = Field(pattern=STEP_ID)
    type: Literal["branch"]
    condition: EventCondition | SegmentCondition
    then: str = Field(pattern=STEP_ID, description="the step when the condition holds")
    otherwise: str | None = Field(
        None, pattern=STEP_ID, description="the step when it does not; null: the next step"
    )


class ExitStep(_Strict):
    id: str = Field(pattern=STEP_ID)
    type: Literal["exit"]
    reason: str = Field("exit step", max_length=200)


Step = Annotated[SendStep | WaitStep | BranchStep | ExitStep, Field(discriminator="type")]


class ExitCondition(_Strict):
    """The journey ends when this event happens after entry (checked on arrival and before each send)."""

    event: Annotated[str, Field(pattern=EVENT_NAME)]


class ReEntry(_Strict):
    rule: Literal["never", "after_days", "always"] = "never"
    days: int | None = Field(None, ge=1, le=3650)

    @model_validator(mode="after")
    def _days(self) -> ReEntry:
        if (self.rule == "after_days") != (self.days is not None):
            raise ValueError("days is required with after_days, and only with it")
        return self


class FlowDefinition(_Strict):
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    exit_conditions: list[ExitCondition] = Field(default_factory=list, max_length=20)
    re_entry: ReEntry = Field(default_factory=lambda: ReEntry(rule="never", days=None))

    @model_validator(mode="after")
    def _graph(self) -> FlowDefinition:
        ids = [step.id for step in self.steps]
        for index, step in enumerate(self.steps):
            if ids.index(step.id) != index:
                raise ValueError(f"steps.{index}.id: {step.id!r} is used by an earlier step")
            if isinstance(step, BranchStep):
                for field in ("then", "otherwise"):
                    target = getattr(step, field)
                    if target is None:
                        continue
                    if target not in ids:
                        raise ValueError(f"steps.{index}.{field}: no step has the id {target!r}")
                    if ids.index(target) <= index:
                        raise ValueError(f"steps.{index}.{field}: a branch may only jump forward")
        return self

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def after(self, step_id: str) -> str | None:
        """The id of the step that follows `step_id` in order; None after the last."""
        ids = [step.id for step in self.steps]
        index = ids.index(step_id) + 1
        return ids[index] if index < len(ids) else None

    @property
    def trigger_event(self) -> str:
        """The event name an event-driven trigger listens for ("" for time-driven ones)."""
        kind = self.trigger.kind
        if isinstance(self.trigger, CustomEvent):
            return self.trigger.name
        return {"purchase": PURCHASE, "contact_created": "contact_created"}.get(
            kind, "contact_confirmed" if kind == "contact_confirmed" else ""
        )
