"""Flows: the list (state, journeys by state), ready-made flows to start from, a flow's page (its steps
as a numbered list, activate / pause / archive), the form-based editor (`app.ui.flow_form`: the same
`FlowDefinition` schema as the API, errors at their fields) and the journeys (who is at which step,
who left and why). Viewers see everything and change nothing (the blueprint refuses their POSTs)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, require_role
from app.extensions import db
from app.ui.actions import arg_int, perform
from app.ui.blueprint import ui
from app.ui.flow_form import (
    CONDITIONS,
    STEP_TYPES,
    apply_op,
    field_errors,
    rows_from_definition,
    rows_from_form,
    validate,
)
from app.ui.flow_report_view import flow_report_context
from app.ui.flow_steps import describe_steps, describe_trigger
from campaigns.errors import InputError, StateError
from campaigns.flows import library, records
from models import Contact, Flow, FlowEntry, Role, Segment, Template

TRIGGERS = (
    ("contact_confirmed", "a contact confirms their subscription (double opt-in)"),
    ("contact_created", "a contact is created"),
    ("event", "an event is posted (added_to_cart, browsed, any name)"),
    ("purchase", "a purchase"),
    ("segment_joined", "a contact joins a segment"),
    ("inactivity", "no open or click for N days"),
    ("date_attribute", "a date attribute comes round (birthday, renewal)"),
)
ENTRY_STATES = ("active", "completed", "exited")
PAGE = 50


def _template_names() -> dict[int, str]:
    return {
        int(i): str(n) for i, n in db().execute(sa.select(Template.id, Template.name).order_by(Template.name))
    }


@ui.route("/flows")
@require_role(Role.viewer)
def flows() -> str:
    rows = list(db().scalars(sa.select(Flow).order_by(Flow.id.desc()).limit(500)))
    counts: dict[int, dict[str, int]] = {}
    for flow_id, state, n in db().execute(
        sa.select(FlowEntry.flow_id, FlowEntry.state, sa.func.count()).group_by(
            FlowEntry.flow_id, FlowEntry.state
        )
    ):
        counts.setdefault(int(flow_id), {})[str(state)] = int(n)
    return render_template(
        "ui/flows.html",
        rows=[(f, counts.get(f.id, {}), describe_trigger(f.definition.get("trigger", {}))) for f in rows],
        ready=list(library.READY.values()),
        form=request.form,
    )


@ui.route("/flows/from-template", methods=["POST"])
@require_role(Role.marketer)
def flows_from_template() -> Response:
    key = request.form.get("template", "")

    def make() -> Flow:
        return records.create_from_library(
            db(),
            key,
            request.form.get("name", "").strip(),
            request.form.get("from_email", "").strip(),
            actor(),
            request.form.get("from_name", "").strip(),
        )

    return perform(
        make,
        success=lambda f: (
            f"Created draft flow {f.name} from a ready-made flow: check its steps, then activate it."
        ),
        back=lambda f: url_for("ui.flows_edit", flow_id=f.id),
        failed=url_for("ui.flows"),
    )


def _editor(flow: Flow | None, state: dict[str, Any], errors: dict[str, str], error: str = "") -> str:
    segments = db().execute(sa.select(Segment.id, Segment.name).order_by(Segment.name)).all()
    return render_template(
        "ui/flow_edit.html",
        flow=flow,
        name=request.form.get("name", flow.name if flow else "")
        if request.method == "POST"
        else (flow.name if flow else ""),
        s=state,
        errors=errors,
        error=error,
        triggers=TRIGGERS,
        step_types=STEP_TYPES,
        conditions=CONDITIONS,
        templates=list(_template_names().items()),
        segments=[(int(i), str(n)) for i, n in segments],
        later={
            r["key"]: [(x["id"], x["id"]) for x in state["steps"][i + 1 :] if x["id"]]
            for i, r in enumerate(state["steps"])
        },
    )


def _save(flow: Flow | None) -> str | Response | tuple[str, int]:
    state = rows_from_form(request.form)
    op = request.form.get("op", "save")
    if op != "save":
        apply_op(state, op)
        return _editor(flow, state, {})
    definition, errors = validate(state)
    name = request.form.get("name", "").strip()
    if not name:
        errors["name"] = "a flow needs a name"
    if definition is None or errors:
        return _editor(flow, state, errors, "Not saved: see the fields marked below."), 400
    try:
        if flow is None:
            saved = records.create_flow(db(), name, definition, actor())
        else:
            saved = records.update_flow(db(), flow.id, name, definition)
    except InputError as exc:
        db().rollback()
        problems = (
            exc.details if isinstance(exc.details, list) else [{"where": exc.where, "error": exc.message}]
        )
        errors = field_errors(state, [(str(p.get("where") or ""), str(p.get("error"))) for p in problems])
        return _editor(flow, state, errors, f"Not saved: {exc.message}"), 400
    except StateError as exc:
        db().rollback()
        where = "name" if "named" in str(exc) else "steps"
        return _editor(flow, state, {where: str(exc)}, f"Not saved: {exc}"), 400
    return perform(
        lambda: saved,
        success=lambda f: f"Saved flow {f.name} (version {f.version}).",
        back=lambda f: url_for("ui.flows_detail", flow_id=f.id),
    )


@ui.route("/flows/new", methods=["GET", "POST"])
@require_role(Role.marketer)
def flows_new() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        blank = {"trigger": {"kind": "contact_confirmed"}, "steps": [{"id": "welcome", "type": "send"}]}
        return _editor(None, rows_from_definition(blank), {})
    return _save(None)


@ui.route("/flows/<int:flow_id>/edit", methods=["GET", "POST"])
@require_role(Role.marketer)
def flows_edit(flow_id: int) -> str | Response | tuple[str, int]:
    flow = records.get_flow(db(), flow_id)
    if flow.state == "archived":
        return render_template(
            "ui/error.html", code=409, title="Not possible now", message="An archived flow cannot change."
        ), 409
    if request.method == "GET":
        return _editor(flow, rows_from_definition(flow.definition), {})
    return _save(flow)


@ui.route("/flows/<int:flow_id>")
@require_role(Role.viewer)
def flows_detail(flow_id: int) -> str:
    flow = records.get_flow(db(), flow_id)
    recent = _entries(flow.id, None, 0, 10)
    return render_template(
        "ui/flow_detail.html",
        flow=flow,
        counts=records.entry_counts(db(), flow.id),
        trigger=describe_trigger(
            flow.definition.get("trigger", {}),
            {int(i): str(n) for i, n in db().execute(sa.select(Segment.id, Segment.name))},
        ),
        steps=describe_steps(flow.definition, _template_names()),
        definition=flow.definition,
        recent=recent,
        **flow_report_context(db(), flow.id),
    )


@ui.route("/flows/<int:flow_id>/act/<action>", methods=["POST"])
@require_role(Role.marketer)
def flows_act(flow_id: int, action: str) -> Response:
    if action not in records.TRANSITIONS:
        abort(404)
    done = {"activate": "Activated", "pause": "Paused", "archive": "Archived"}[action]
    return perform(
        lambda: records.change_state(db(), flow_id, action),
        success=lambda f: f"{done} flow {f.name}.",
        back=url_for("ui.flows_detail", flow_id=flow_id),
    )


def _entries(flow_id: int, state: str | None, after: int, limit: int) -> list[tuple[FlowEntry, str]]:
    stmt = (
        sa.select(FlowEntry, Contact.email)
        .join(Contact, Contact.id == FlowEntry.contact_id)
        .where(FlowEntry.flow_id == flow_id, FlowEntry.id > after)
        .order_by(FlowEntry.id)
        .limit(limit)
    )
    if state:
        stmt = stmt.where(FlowEntry.state == state)
    return [(e, str(email)) for e, email in db().execute(stmt)]


@ui.route("/flows/<int:flow_id>/entries")
@require_role(Role.viewer)
def flows_entries(flow_id: int) -> str:
    flow = records.get_flow(db(), flow_id)
    state = request.args.get("state") if request.args.get("state") in ENTRY_STATES else None
    after = arg_int("after", 0)
    rows = _entries(flow.id, state, after, PAGE + 1)
    return render_template(
        "ui/flow_entries.html",
        flow=flow,
        rows=rows[:PAGE],
        next_after=rows[PAGE - 1][0].id if len(rows) > PAGE else None,
        state=state,
        states=ENTRY_STATES,
        counts=records.entry_counts(db(), flow.id),
    )
