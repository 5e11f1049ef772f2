"""Segments: a rule builder with a live count, saved rules, and the list of segments with their sizes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, jsonify, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db, get_runtime
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from app.ui.segment_form import FIELDS, KINDS, OPS, Row, builder_state, rows_from_form, rules_from_form
from campaigns.audience import rules as audience
from campaigns.audience import sizes as segment_sizes
from campaigns.errors import InputError
from models import Contact, Role, Segment

ATTRIBUTE_SAMPLE = 500


def _attribute_keys() -> list[str]:
    """Attribute names seen on a sample of contacts, offered as suggestions in the field box."""
    keys: set[str] = set()
    for attributes in db().scalars(sa.select(Contact.attributes).limit(ATTRIBUTE_SAMPLE)):
        keys.update(str(k) for k in (attributes or {}))
    return sorted(keys)


def _builder(segment: Segment | None, error: str = "", form_rows: list[Row] | None = None) -> dict[str, Any]:
    match, rows, rules_json = builder_state(segment.rules if segment else None)
    if form_rows is not None:
        match, rows, rules_json = (
            request.form.get("match", "all"),
            form_rows,
            request.form.get("rules_json", ""),
        )
    return {
        "segment": segment,
        "match": match,
        "rows": rows or [Row()],
        "rules_json": rules_json,
        "kinds": KINDS,
        "ops": OPS,
        "fields": [*FIELDS, *(f"attributes.{k}" for k in _attribute_keys())],
        "error": error,
        "blank": Row(),
    }


@ui.route("/segments")
@require_role(Role.viewer)
def segments() -> str:
    """Sizes already counted are shown at once; the browser asks for the others one by one."""
    rows = db().scalars(sa.select(Segment).order_by(Segment.name)).all()
    sizes = segment_sizes.known_sizes(get_runtime().redis, rows)
    return render_template("ui/segments.html", segments=rows, sizes=sizes)


@ui.route("/segments/<int:segment_id>/size")
@require_role(Role.viewer)
def segments_size(segment_id: int) -> Response:
    """{"count": sendable contacts} or {"error": ...}: counted, or from the few-minute cache."""
    segment = db().get(Segment, segment_id) or abort(404)
    try:
        found = segment_sizes.size(get_runtime().redis, db(), segment.id, segment.rules)
    except InputError as exc:
        return jsonify(error=f"invalid: {describe(exc)}")
    return jsonify(count=found.sendable, counted_at=found.counted_at.isoformat())


@ui.route("/segments/new")
@require_role(Role.marketer)
def segments_new() -> str:
    return render_template("ui/segment_edit.html", **_builder(None))


@ui.route("/segments/<int:segment_id>")
@require_role(Role.viewer)
def segments_detail(segment_id: int) -> str:
    segment = db().get(Segment, segment_id) or abort(404)
    return render_template("ui/segment_edit.html", **_builder(segment))


@ui.route("/segments/count", methods=["POST"])
@require_role(Role.marketer)
def segments_count() -> tuple[Response, int] | Response:
    """The live count while editing: everyone matching, and how many of them can be sent to."""
    try:
        rules = rules_from_form(request.form)
        total = audience.count(db(), rules)
        sendable = audience.count(db(), rules, sendable_only=True)
    except InputError as exc:
        return jsonify(error=exc.message, where=exc.where), 200
    return jsonify(count=total, sendable=sendable)


def _save(segment: Segment | None) -> Segment:
    name = request.form.get("name", "").strip()
    if not name:
        raise InputError("a segment needs a name", where="name")
    clash = db().scalar(sa.select(Segment.id).where(Segment.name == name))
    if clash is not None and (segment is None or clash != segment.id):
        raise InputError(f"there is already a segment called {name!r}", where="name")
    rules = rules_from_form(request.form)
    audience.validate_rules(rules)
    if segment is None:
        segment = Segment(name=name)
        db().add(segment)
    segment.name = name
    segment.description = request.form.get("description", "").strip()
    segment.rules = rules
    db().flush()
    return segment


@ui.route("/segments/new", methods=["POST"])
@ui.route("/segments/<int:segment_id>", methods=["POST"])
@require_role(Role.marketer)
def segments_save(segment_id: int | None = None) -> Response | tuple[str, int]:
    segment = db().get(Segment, segment_id) if segment_id else None
    if segment_id and segment is None:
        abort(404)
    try:
        saved = _save(segment)
    except InputError as exc:
        db().rollback()
        page = render_template(
            "ui/segment_edit.html", **_builder(segment, describe(exc), rows_from_form(request.form))
        )
        return page, 400
    return perform(
        lambda: saved,
        success=lambda s: f"Saved segment {s.name}.",
        back=lambda s: url_for("ui.segments_detail", segment_id=s.id),
    )
