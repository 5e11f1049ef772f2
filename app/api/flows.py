"""Flows: triggered journeys (campaigns.flows). The request schema of a flow's definition is
campaigns.flows.definition.FlowDefinition: a bad one answers 400 naming the step and the field
(`definition.steps.1.wait.hours`). Also `POST /contact-events`: a custom event about a contact
(`browsed`, `added_to_cart`, `purchase`...) that enters and exits flows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field, field_validator, model_validator

from app.api.contacts import PageQuery
from app.api.responses_flows import (
    ContactEventAccepted,
    FlowEntryList,
    FlowList,
    FlowOut,
    FlowTemplateList,
)
from app.api.schema import ApiModel, Id, Name, QueryModel
from app.api.spec import route
from app.auth import actor
from app.extensions import db
from campaigns.contacts.records import normalize_email
from campaigns.errors import InputError, NotFound
from campaigns.flows import library
from campaigns.flows.definition import EVENT_NAME, FlowDefinition
from campaigns.flows.records import (
    change_state,
    create_flow,
    create_from_library,
    entry_counts,
    entry_json,
    flow_json,
    get_flow,
    update_flow,
)
from campaigns.flows.triggers import record_event
from models import Contact, Flow, FlowEntry, Role


class FlowIn(ApiModel):
    name: Name | None = Field(None, description="required with `definition`; default: the ready-made flow's")
    definition: FlowDefinition | None = Field(None, description="the flow, or give `from_template`")
    from_template: Literal["welcome", "abandoned_cart", "post_purchase", "win_back"] | None = Field(
        None, description="a ready-made flow (`GET /flow-templates`); its email templates are made if missing"
    )
    from_email: str | None = Field(
        None, max_length=320, description="the sender of its emails (`from_template`)"
    )
    from_name: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _one_source(self) -> FlowIn:
        if (self.definition is None) == (self.from_template is None):
            raise ValueError("give definition or from_template (one of them)")
        if self.definition is not None and not self.name:
            raise ValueError("name: a flow needs a name")
        if self.from_template is not None and not self.from_email:
            raise ValueError("from_email: a ready-made flow needs the sender's address")
        return self


class FlowPatch(ApiModel):
    name: Name | None = None
    definition: FlowDefinition | None = None


class EntriesQuery(PageQuery):
    state: Literal["active", "completed", "exited"] | None = None


class FlowsQuery(QueryModel):
    state: Literal["draft", "active", "paused", "archived"] | None = None


PROPERTIES_MAX_BYTES = 16 * 1024  # an event's properties are stored with every event and entry
PROPERTIES_MAX_DEPTH = 8


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class ContactEventIn(ApiModel):
    name: str = Field(pattern=EVENT_NAME, description="`browsed`, `added_to_cart`, `purchase`, any name")
    contact_id: Id | None = Field(None, description="the contact, or give `email`")
    email: str | None = Field(None, max_length=320)
    key: str | None = Field(
        None, min_length=1, max_length=190, description="an id of the event: posting it again does nothing"
    )
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description=f"kept with the event and the entry; at most {PROPERTIES_MAX_BYTES:,} bytes of JSON, "
        f"nested at most {PROPERTIES_MAX_DEPTH} deep",
    )
    occurred_at: datetime | None = Field(None, description="ISO 8601 with a time zone; default now")

    @field_validator("properties")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _depth(value) > PROPERTIES_MAX_DEPTH:
            raise ValueError(f"nested more than {PROPERTIES_MAX_DEPTH} deep")
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > PROPERTIES_MAX_BYTES:
            raise ValueError(f"is {size:,} bytes of JSON; at most {PROPERTIES_MAX_BYTES:,}")
        return value

    @model_validator(mode="after")
    def _who(self) -> ContactEventIn:
        if (self.contact_id is None) == (self.email is None):
            raise ValueError("give contact_id or email (one of them)")
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        return self


def _out(flow: Flow) -> dict[str, Any]:
    return flow_json(flow, entry_counts(db(), flow.id))


@route(
    "/flows", "GET", role=Role.viewer, summary="List flows", query=FlowsQuery, tag="flows", response=FlowList
)
def flows_list(query: FlowsQuery) -> Response:
    stmt = sa.select(Flow).order_by(Flow.id)
    if query.state:
        stmt = stmt.where(Flow.state == query.state)
    return jsonify(flows=[_out(f) for f in db().scalars(stmt)])


@route(
    "/flows",
    "POST",
    role=Role.marketer,
    summary="Create a flow (a draft; a bad definition answers 400 naming the step and field)",
    body=FlowIn,
    tag="flows",
    status=201,
    response=FlowOut,
)
def flows_create(body: FlowIn) -> tuple[Response, int]:
    if body.definition is not None:
        flow = create_flow(db(), body.name or "", body.definition, actor())
    else:
        assert body.from_template is not None and body.from_email is not None
        flow = create_from_library(
            db(), body.from_template, body.name or "", body.from_email, actor(), body.from_name
        )
    db().commit()
    return jsonify(_out(flow)), 201


@route(
    "/flow-templates",
    "GET",
    role=Role.viewer,
    summary="Ready-made flows: welcome series, abandoned cart, post-purchase cross-sell, win-back",
    tag="flows",
    response=FlowTemplateList,
)
def flow_templates() -> Response:
    return jsonify(flow_templates=library.catalog_json())


@route("/flows/<int:flow_id>", "GET", role=Role.viewer, summary="A flow", tag="flows", response=FlowOut)
def flows_get(flow_id: int) -> Response:
    return jsonify(_out(get_flow(db(), flow_id)))


@route(
    "/flows/<int:flow_id>",
    "PATCH",
    role=Role.marketer,
    summary="Rename a flow or change its definition (a new version; journeys inside keep theirs)",
    body=FlowPatch,
    tag="flows",
    response=FlowOut,
)
def flows_update(flow_id: int, body: FlowPatch) -> Response:
    flow = update_flow(db(), flow_id, body.name, body.definition)
    db().commit()
    return jsonify(_out(flow))


def _transition(flow_id: int, action: str) -> Response:
    flow = change_state(db(), flow_id, action, actor())
    db().commit()
    return jsonify(_out(flow))


@route(
    "/flows/<int:flow_id>/activate",
    "POST",
    role=Role.marketer,
    summary="Activate a draft or paused flow: triggers enter contacts, due steps run",
    tag="flows",
    response=FlowOut,
)
def flows_activate(flow_id: int) -> Response:
    return _transition(flow_id, "activate")


@route(
    "/flows/<int:flow_id>/pause",
    "POST",
    role=Role.marketer,
    summary="Pause a flow: nobody enters, journeys inside wait where they are",
    tag="flows",
    response=FlowOut,
)
def flows_pause(flow_id: int) -> Response:
    return _transition(flow_id, "pause")


@route(
    "/flows/<int:flow_id>/archive",
    "POST",
    role=Role.marketer,
    summary="Archive a flow: its open journeys exit, unsent steps are skipped",
    tag="flows",
    response=FlowOut,
)
def flows_archive(flow_id: int) -> Response:
    return _transition(flow_id, "archive")


@route(
    "/flows/<int:flow_id>/entries",
    "GET",
    role=Role.viewer,
    summary="A flow's journeys: each contact's step and state (keyset pages by id)",
    query=EntriesQuery,
    tag="flows",
    response=FlowEntryList,
)
def flows_entries(flow_id: int, query: EntriesQuery) -> Response:
    get_flow(db(), flow_id)
    stmt = (
        sa.select(FlowEntry)
        .where(FlowEntry.flow_id == flow_id, FlowEntry.id > query.after)
        .order_by(FlowEntry.id)
        .limit(query.limit)
    )
    if query.state:
        stmt = stmt.where(FlowEntry.state == query.state)
    return jsonify(entries=[entry_json(e) for e in db().scalars(stmt)])


@route(
    "/contact-events",
    "POST",
    role=Role.marketer,
    summary="Record an event about a contact (enters and exits flows; `key` makes a replay harmless)",
    body=ContactEventIn,
    tag="flows",
    status=202,
    response=ContactEventAccepted,
)
def contact_event(body: ContactEventIn) -> tuple[Response, int]:
    if body.contact_id is not None:
        contact_id = db().scalar(sa.select(Contact.id).where(Contact.id == body.contact_id))
        if contact_id is None:
            raise NotFound(f"contact {body.contact_id} does not exist")
    else:
        email = normalize_email(body.email or "")
        contact_id = db().scalar(sa.select(Contact.id).where(Contact.email == email))
        if contact_id is None:
            raise InputError("no contact has this email", where="email")
    key = f"api:{body.name}:{body.key}" if body.key else None
    recorded = record_event(
        db(), contact_id, body.name, key=key, properties=body.properties, occurred_at=body.occurred_at
    )
    db().commit()
    return jsonify(recorded=recorded, contact_id=contact_id), 202
