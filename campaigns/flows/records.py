"""Flow records: create, edit (a new version; entries keep theirs), and the state machine
draft -> active <-> paused, any -> archived (its open journeys exit). Activation checks that what
the definition names exists (templates, the trigger's segment)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from campaigns.errors import InputError, NotFound, StateError
from campaigns.flows.definition import FlowDefinition, SegmentJoined, SendStep
from campaigns.flows.triggers import finish
from models import Flow, FlowEntry, FlowVersion, Segment, Template, utcnow

TRANSITIONS = {
    "activate": ({"draft", "paused"}, "active"),
    "pause": ({"active"}, "paused"),
    "archive": ({"draft", "active", "paused"}, "archived"),
}


def get_flow(session: Session, flow_id: int) -> Flow:
    flow = session.get(Flow, flow_id)
    if flow is None:
        raise NotFound(f"flow {flow_id} does not exist")
    return flow


def check_references(session: Session, definition: FlowDefinition, where: str = "definition") -> None:
    """Every template and segment the definition names exists (InputError naming the step and field)."""
    for index, step in enumerate(definition.steps):
        if isinstance(step, SendStep) and session.get(Template, step.template_id) is None:
            raise InputError(
                f"step {step.id!r}: template {step.template_id} does not exist",
                where=f"{where}.steps.{index}.template_id",
            )
    trigger = definition.trigger
    if isinstance(trigger, SegmentJoined) and session.get(Segment, trigger.segment_id) is None:
        raise InputError(f"segment {trigger.segment_id} does not exist", where=f"{where}.trigger.segment_id")
    from campaigns.audience.rules import validate_rules
    from campaigns.flows.definition import BranchStep, SegmentCondition

    for index, step in enumerate(definition.steps):
        if isinstance(step, BranchStep) and isinstance(step.condition, SegmentCondition):
            try:
                validate_rules(step.condition.segment_rules)
            except InputError as exc:
                raise InputError(
                    exc.message, where=f"{where}.steps.{index}.condition.{exc.where or 'segment_rules'}"
                ) from None


def _unique_name(session: Session, name: str, flow_id: int | None) -> None:
    if not 1 <= len(name) <= 200:
        raise InputError("a flow's name has 1 to 200 characters", where="name")
    other = session.scalar(sa.select(Flow.id).where(Flow.name == name, Flow.id != (flow_id or -1)))
    if other is not None:
        raise StateError(f"flow {other} is already named {name!r}")


def create_flow(session: Session, name: str, definition: FlowDefinition, actor: str) -> Flow:
    check_references(session, definition)
    _unique_name(session, name, None)
    stored = definition.model_dump(mode="json")
    flow = Flow(
        name=name,
        trigger_kind=definition.trigger.kind,
        trigger_event=definition.trigger_event,
        definition=stored,
        version=1,
        state="draft",
        created_by=actor,
    )
    session.add(flow)
    session.flush()
    session.add(FlowVersion(flow_id=flow.id, version=1, definition=stored))
    session.flush()
    return flow


def update_flow(session: Session, flow_id: int, name: str | None, definition: FlowDefinition | None) -> Flow:
    """A changed definition becomes a new version: new entries follow it, entries inside keep theirs."""
    flow = get_flow(session, flow_id)
    if flow.state == "archived":
        raise StateError(f"flow {flow_id} is archived: it cannot change")
    if name is not None:
        _unique_name(session, name, flow_id)
        flow.name = name
    if definition is not None:
        check_references(session, definition)
        stored = definition.model_dump(mode="json")
        if stored != flow.definition:
            flow.version += 1
            flow.definition = stored
            flow.trigger_kind, flow.trigger_event = definition.trigger.kind, definition.trigger_event
            session.add(FlowVersion(flow_id=flow.id, version=flow.version, definition=stored))
    session.flush()
    return flow


def create_from_library(
    session: Session, key: str, name: str, from_email: str, actor: str, from_name: str = ""
) -> Flow:
    """A draft of the ready-made flow `key`, making the library templates the workspace lacks (found
    by name: an edited copy is kept). A bad address answers naming the step's field."""
    from campaigns.content.templates import save_template
    from campaigns.flows import library

    if key not in library.READY:
        raise InputError(
            f"no ready-made flow {key!r} (one of {', '.join(library.READY)})", where="from_template"
        )
    ids: dict[str, int] = {}
    for template_key in library.READY[key].templates():
        template_name, fields = library.TEMPLATES[template_key]
        found = session.scalar(sa.select(Template.id).where(Template.name == template_name))
        ids[template_key] = (
            found if found is not None else save_template(session, {"name": template_name, **fields}).id
        )
    session.flush()
    raw = library.definition(key, ids, from_email, from_name)
    try:
        definition = FlowDefinition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][-1]) if first["loc"][-1] in ("from_email", "from_name") else "from_template"
        raise InputError(str(first["msg"]).removeprefix("Value error, "), where=field) from None
    return create_flow(session, name or library.READY[key].name, definition, actor)


def change_state(session: Session, flow_id: int, action: str, actor: str = "") -> Flow:
    allowed, target = TRANSITIONS[action]
    flow = session.scalar(sa.select(Flow).where(Flow.id == flow_id).with_for_update())
    if flow is None:
        raise NotFound(f"flow {flow_id} does not exist")
    if flow.state not in allowed:
        raise StateError(f"flow {flow_id} is {flow.state}: it cannot {action}")
    now = utcnow()
    if target == "active":
        check_references(session, FlowDefinition.model_validate(flow.definition))
        flow.activated_at = flow.activated_at or now
        from campaigns.flows.ai import ensure_step_rollouts

        ensure_step_rollouts(session, flow, actor)  # AI send steps: a rollout each, sized and started
    if target == "archived":
        for entry in session.scalars(
            sa.select(FlowEntry).where(FlowEntry.flow_id == flow.id, FlowEntry.state == "active")
        ):
            finish(session, entry, "exited", "flow archived", now, withdraw=True)
    flow.state = target
    session.flush()
    return flow


def flow_json(flow: Flow, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": flow.id,
        "name": flow.name,
        "state": flow.state,
        "version": flow.version,
        "definition": flow.definition,
        "created_by": flow.created_by,
        "created_at": flow.created_at.isoformat(),
        "updated_at": flow.updated_at.isoformat(),
        "activated_at": flow.activated_at.isoformat() if flow.activated_at else None,
        "entries": counts or {},
    }


def entry_counts(session: Session, flow_id: int) -> dict[str, int]:
    rows = session.execute(
        sa.select(FlowEntry.state, sa.func.count())
        .where(FlowEntry.flow_id == flow_id)
        .group_by(FlowEntry.state)
    ).all()
    return {state: int(n) for state, n in rows}


def entry_json(entry: FlowEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "contact_id": entry.contact_id,
        "version": entry.version,
        "generation": entry.generation,
        "state": entry.state,
        "step_id": entry.step_id or None,
        "entered_at": entry.entered_at.isoformat(),
        "next_due_at": entry.next_due_at.isoformat() if entry.next_due_at else None,
        "finished_at": entry.finished_at.isoformat() if entry.finished_at else None,
        "exit_reason": entry.exit_reason,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
    }
