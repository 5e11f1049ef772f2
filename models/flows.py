"""Flows: triggered journeys (campaigns.flows). A flow's definition is versioned: every entry keeps
the version it entered with, so editing an active flow never moves contacts already inside it.

Tables:
- `flows`: the current definition, its version number and state (draft|active|paused|archived).
- `flow_versions`: every definition a flow has had; entries read theirs from here.
- `flow_entries`: one contact's journey through one flow: its step, when it is next due, its state.
- `flow_step_campaigns`: the hidden campaign (kind `flow_step`) each send step sends through, one
  per (flow, version, step, generation); generation n is a contact's n-th entry into the flow, so the
  send ledger's unique (campaign, contact) key holds across re-entries.
- `contact_events`: events about a contact the flows act on (custom events from the API, purchases,
  signups); unique on `key`, so an event posted twice is recorded once.
- `flow_segment_members`: for `segment_joined` flows, who was in the segment at the last check and
  how many times they joined, so leaving and joining again is seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

FLOW_STATES = ("draft", "active", "paused", "archived")
ENTRY_STATES = ("active", "completed", "exited")


class Flow(Base):
    __tablename__ = "flows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # the trigger's kind, copied out of the definition so event hooks find their flows by index
    trigger_kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    trigger_event: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    definition: Mapped[dict[str, Any]] = mapped_column()  # campaigns.flows.definition.FlowDefinition
    version: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(sa.String(10), default="draft", index=True)
    created_by: Mapped[str] = mapped_column(sa.String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)


class FlowVersion(Base):
    __tablename__ = "flow_versions"
    __table_args__ = (sa.UniqueConstraint("flow_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_id: Mapped[int] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    definition: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowEntry(Base):
    __tablename__ = "flow_entries"
    __table_args__ = (
        # the same triggering event never enters a contact twice
        sa.UniqueConstraint("flow_id", "contact_id", "trigger_key"),
        sa.Index("ix_flow_entries_due", "state", "next_due_at"),
        sa.Index("ix_flow_entries_flow_contact", "flow_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_id: Mapped[int] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column()  # the flow version this journey follows
    generation: Mapped[int] = mapped_column(default=1)  # the contact's n-th entry into this flow
    trigger_key: Mapped[str] = mapped_column(sa.String(420))  # "<event name>:<event key>"
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    step_id: Mapped[str] = mapped_column(sa.String(64))  # the step to run when due; "": past the last
    # when the current step is due; null once the journey is over
    next_due_at: Mapped[datetime | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(sa.String(10), default="active")
    exit_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)  # failed runs of the current step
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    last_send_id: Mapped[int | None] = mapped_column(BigId, default=None)  # skipped if the entry exits
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the triggering event's
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FlowStepCampaign(Base):
    __tablename__ = "flow_step_campaigns"
    __table_args__ = (sa.UniqueConstraint("flow_id", "version", "step_id", "generation"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_id: Mapped[int] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    step_id: Mapped[str] = mapped_column(sa.String(64))
    generation: Mapped[int] = mapped_column()
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)


class ContactEvent(Base):
    __tablename__ = "contact_events"
    __table_args__ = (sa.Index("ix_contact_events_contact_name", "contact_id", "name", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(100))
    key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowSegmentMember(Base):
    """Whether a contact was in a `segment_joined` flow's segment at the last check, and how many
    times it joined: leaving and joining again is a new join (`joins` + 1), a new trigger key."""

    __tablename__ = "flow_segment_members"

    flow_id: Mapped[int] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    present: Mapped[bool] = mapped_column(default=True)
    joins: Mapped[int] = mapped_column(default=1)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
