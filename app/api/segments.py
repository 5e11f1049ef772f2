"""Segments: saved rules over attributes and behaviour, with live counts (see campaigns.audience.rules)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.contacts import PageQuery, contact_json
from app.api.responses import SegmentContacts, SegmentList, SegmentOut
from app.api.responses_people import AudienceCount
from app.api.schema import ApiModel
from app.api.spec import route
from app.extensions import db
from campaigns.audience import rules as audience
from campaigns.errors import InputError, NotFound, StateError
from models import Campaign, Contact, Role, Segment, utcnow

RULES_DOC = (
    'A rule tree: {"all": [...]}, {"any": [...]}, {"not": rule}, {"field": F, "op": OP, "value": V} '
    "(F: email, name, country, timezone, consent, status, created_at or attributes.<name>; "
    "OP: eq ne in not_in lt le gt ge contains exists), "
    '{"purchased": {"category", "sku", "within_days", "since", "before"}}, '
    '{"no_purchase_since": {"days": N} | {"date": D}, "bought_before": bool}, '
    '{"purchase_count": {"op", "value", ...}}, {"total_spend": {"op", "value", ...}}.'
)


class SegmentPatch(ApiModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    rules: dict[str, Any] | None = Field(None, description=RULES_DOC)


class SegmentIn(SegmentPatch):
    name: str = Field(min_length=1, max_length=200)
    rules: dict[str, Any] = Field(description=RULES_DOC)


class CountIn(ApiModel):
    rules: dict[str, Any] = Field(description=RULES_DOC)


class MembersQuery(PageQuery):
    sendable: bool = Field(False, description="true: only contacts a campaign would send to")


def segment_json(s: Segment, counts: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "rules": s.rules,
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
    }
    if counts is not None:
        body.update(counts)
    return body


def _counts(rules: Any) -> dict[str, int]:
    now = utcnow()
    return {
        "count": audience.count(db(), rules, now=now),
        "sendable": audience.count(db(), rules, sendable_only=True, now=now),
    }


def _get(segment_id: int) -> Segment:
    segment = db().get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} does not exist")
    return segment


def _fields(body: dict[str, Any], partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
            raise InputError("name is required (1 to 200 characters)", where="name")
        fields["name"] = name.strip()
    if "description" in body:
        if not isinstance(body["description"], str):
            raise InputError("description must be text", where="description")
        fields["description"] = body["description"]
    if "rules" in body or not partial:
        if "rules" not in body:
            raise InputError("rules are required", where="rules")
        audience.validate_rules(body["rules"])
        fields["rules"] = body["rules"]
    return fields


def _check_name(name: str | None, segment_id: int | None) -> None:
    if name is None:
        return
    other = db().scalar(sa.select(Segment.id).where(Segment.name == name, Segment.id != (segment_id or -1)))
    if other is not None:
        raise StateError(f"segment {other} is already named {name!r}")


@route("/segments", "GET", role=Role.viewer, summary="List segments", tag="segments", response=SegmentList)
def segments_list() -> Response:
    segments = db().scalars(sa.select(Segment).order_by(Segment.name))
    return jsonify(segments=[segment_json(s) for s in segments])


@route(
    "/segments",
    "POST",
    role=Role.marketer,
    summary="Save a segment (rules are validated; bad ones answer 400 naming the rule)",
    body=SegmentIn,
    tag="segments",
    status=201,
    response=SegmentOut,
)
def segments_create(body: SegmentIn) -> tuple[Response, int]:
    fields = _fields(body.model_dump(exclude_unset=True), partial=False)
    _check_name(fields["name"], None)
    segment = Segment(**fields)
    db().add(segment)
    db().commit()
    return jsonify(segment_json(segment, _counts(segment.rules))), 201


@route(
    "/segments/count",
    "POST",
    role=Role.viewer,
    summary="Live count for rules, without saving them",
    body=CountIn,
    response=AudienceCount,
    tag="segments",
)
def segments_count(body: CountIn) -> Response:
    audience.validate_rules(body.rules)
    return jsonify(_counts(body.rules))


@route(
    "/segments/<int:segment_id>",
    "GET",
    role=Role.viewer,
    summary="A segment with its live counts",
    tag="segments",
    response=SegmentOut,
)
def segments_get(segment_id: int) -> Response:
    segment = _get(segment_id)
    return jsonify(segment_json(segment, _counts(segment.rules)))


@route(
    "/segments/<int:segment_id>",
    "PATCH",
    role=Role.marketer,
    summary="Rename a segment or change its rules",
    body=SegmentPatch,
    tag="segments",
    response=SegmentOut,
)
def segments_update(segment_id: int, body: SegmentPatch) -> Response:
    segment = _get(segment_id)
    fields = _fields(body.model_dump(exclude_none=True), partial=True)
    _check_name(fields.get("name"), segment_id)
    for name, value in fields.items():
        setattr(segment, name, value)
    db().commit()
    return jsonify(segment_json(segment, _counts(segment.rules)))


@route(
    "/segments/<int:segment_id>",
    "DELETE",
    role=Role.marketer,
    summary="Delete a segment no campaign uses",
    tag="segments",
    status=204,
)
def segments_delete(segment_id: int) -> tuple[str, int]:
    segment = _get(segment_id)
    used = db().scalars(sa.select(Campaign.id).where(Campaign.segment_id == segment_id).limit(5)).all()
    if used:
        raise StateError(f"campaigns {used} use segment {segment_id}; it cannot be deleted")
    db().delete(segment)
    db().commit()
    return "", 204


@route(
    "/segments/<int:segment_id>/contacts",
    "GET",
    role=Role.viewer,
    summary="Members of a segment, a page at a time",
    query=MembersQuery,
    tag="segments",
    response=SegmentContacts,
)
def segments_members(segment_id: int, query: MembersQuery) -> Response:
    segment = _get(segment_id)
    limit = query.limit
    condition = audience.segment_filter(segment.rules, utcnow())
    if query.sendable:
        condition = sa.and_(audience.sendable(), condition)
    rows = list(
        db().scalars(
            sa.select(Contact)
            .where(condition, Contact.id > query.after)
            .order_by(Contact.id)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(contacts=[contact_json(c) for c in rows], next_after=rows[-1].id if more else None)
