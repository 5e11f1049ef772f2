"""Contacts and the suppression list: search, detail with arm history, create, update, delete."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db
from campaigns import contacts, suppression
from campaigns.errors import InputError
from models import Contact, Role, Suppression

CONTACT_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "name": {"type": "string"},
        "country": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA name, e.g. Europe/London"},
        "consent": {"type": "boolean"},
        "status": {"enum": ["active", "unsubscribed", "bounced", "complained"]},
        "external_id": {"type": ["string", "null"]},
        "attributes": {"type": "object", "description": "merged on update; a null value removes a key"},
    },
}
CONTACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {**CONTACT_BODY["properties"], "id": {"type": "integer"}, "created_at": {"type": "string"}},
}
PAGE_QUERY = {"after": "the last id of the previous page (keyset paging)", "limit": "1..1000, default 50"}


def contact_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "email": c.email,
        "name": c.name,
        "country": c.country,
        "timezone": c.timezone,
        "consent": c.consent,
        "status": c.status,
        "external_id": c.external_id,
        "attributes": c.attributes,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "unsubscribed_at": c.unsubscribed_at.isoformat() if c.unsubscribed_at else None,
    }


def int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name} must be an integer, not {raw!r}", where=name) from None


@route(
    "/contacts",
    "GET",
    role=Role.viewer,
    summary="Search contacts, a page at a time",
    query={
        "q": "a substring of the email or name",
        "status": "active | unsubscribed | bounced | complained",
        "country": "exact country",
        "segment_id": "only members of this segment",
        **PAGE_QUERY,
    },
    tag="contacts",
)
def contacts_list() -> Response:
    segment = request.args.get("segment_id")
    page = contacts.search_contacts(
        db(),
        query=request.args.get("q", ""),
        status=request.args.get("status") or None,
        country=request.args.get("country") or None,
        segment_id=int_arg("segment_id", 0) if segment else None,
        after=int_arg("after", 0),
        limit=int_arg("limit", 50),
    )
    return jsonify(
        contacts=[contact_json(c) for c in page.contacts], total=page.total, next_after=page.next_after
    )


@route(
    "/contacts",
    "POST",
    role=Role.marketer,
    summary="Create a contact",
    body={**CONTACT_BODY, "required": ["email"]},
    response=CONTACT_SCHEMA,
    tag="contacts",
)
def contacts_create() -> tuple[Response, int]:
    contact = contacts.create_contact(db(), json_body())
    db().commit()
    return jsonify(contact_json(contact)), 201


@route(
    "/contacts/<int:contact_id>",
    "GET",
    role=Role.viewer,
    summary="A contact with its arm history (every send: campaign, arm, state, sent_at, outcomes)",
    tag="contacts",
)
def contacts_get(contact_id: int) -> Response:
    session = db()
    contact = contacts.get_contact(session, contact_id)
    history = contacts.send_history(session, contact_id)
    for send in history:
        for key, value in send.items():
            if hasattr(value, "isoformat"):
                send[key] = value.isoformat()
    return jsonify(
        {
            **contact_json(contact),
            "suppressed": suppression.is_suppressed(session, contact.email),
            "sends": history,
        }
    )


@route(
    "/contacts/<int:contact_id>",
    "PATCH",
    role=Role.marketer,
    summary="Change some fields of a contact",
    body=CONTACT_BODY,
    response=CONTACT_SCHEMA,
    tag="contacts",
)
def contacts_update(contact_id: int) -> Response:
    contact = contacts.update_contact(db(), contact_id, json_body())
    db().commit()
    return jsonify(contact_json(contact))


@route(
    "/contacts/<int:contact_id>",
    "DELETE",
    role=Role.admin,
    summary="Delete a contact with its sends and history",
    query={"suppress": "true: also put the address on the suppression list"},
    tag="contacts",
)
def contacts_delete(contact_id: int) -> tuple[str, int]:
    suppress = request.args.get("suppress", "").lower() in ("1", "true", "yes")
    contacts.delete_contact(db(), contact_id, suppress=suppress)
    db().commit()
    return "", 204


def suppression_json(row: Suppression) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "reason": row.reason, "created_at": row.created_at.isoformat()}


@route(
    "/suppressions",
    "GET",
    role=Role.viewer,
    summary="The suppression list",
    query={"q": "a substring of the address", **PAGE_QUERY},
    tag="contacts",
)
def suppressions_list() -> Response:
    page = suppression.list_suppressions(
        db(), query=request.args.get("q", ""), after=int_arg("after", 0), limit=int_arg("limit", 100)
    )
    return jsonify(
        suppressions=[suppression_json(r) for r in page.rows], total=page.total, next_after=page.next_after
    )


@route(
    "/suppressions",
    "POST",
    role=Role.marketer,
    summary="Suppress an address (never sent to again); adding twice is harmless",
    body={
        "type": "object",
        "properties": {"email": {"type": "string"}, "reason": {"enum": list(suppression.REASONS)}},
        "required": ["email"],
    },
    tag="contacts",
)
def suppressions_add() -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body.get("email"), str):
        raise InputError("email is required", where="email")
    reason = body.get("reason", "manual")
    if not isinstance(reason, str):
        raise InputError("reason must be text", where="reason")
    row, created = suppression.add_suppression(db(), body["email"], reason)
    db().commit()
    return jsonify(suppression_json(row)), 201 if created else 200


@route(
    "/suppressions/<path:email>",
    "DELETE",
    role=Role.admin,
    summary="Take an address off the suppression list",
    tag="contacts",
)
def suppressions_remove(email: str) -> tuple[str, int]:
    suppression.remove_suppression(db(), email)
    db().commit()
    return "", 204
