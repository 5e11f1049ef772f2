"""Contacts and the suppression list: search, detail with arm history, create, update, delete."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, jsonify, request
from pydantic import Field

from app.api.responses import ContactOut, ContactPage, SuppressionOut, SuppressionPage
from app.api.responses_people import ContactWithSends
from app.api.schema import BIGINT_MAX, ApiModel, QueryModel
from app.api.spec import route
from app.extensions import db
from campaigns.contacts import records as contacts
from campaigns.contacts import suppression
from campaigns.errors import InputError
from models import Contact, Role, Suppression

Status = Literal["active", "unsubscribed", "bounced", "complained"]


class ContactPatch(ApiModel):
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=100, description="IANA name, e.g. Europe/London")
    consent: bool | None = None
    status: Status | None = None
    external_id: str | None = Field(None, max_length=200)
    attributes: dict[str, Any] | None = Field(
        None, description="merged on update; a null value removes a key; at most 64 KiB of JSON after merging"
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (a null external_id clears it; other nulls are ignored)."""
        sent = self.model_dump(exclude_unset=True)
        return {k: v for k, v in sent.items() if v is not None or k == "external_id"}


class ContactIn(ContactPatch):
    email: str = Field(max_length=320)


class PageQuery(QueryModel):
    after: int = Field(0, ge=0, le=BIGINT_MAX, description="the last id of the previous page (keyset)")
    limit: int = Field(50, ge=1, le=1000)


class ContactSearch(PageQuery):
    q: str = Field("", max_length=320, description="a substring of the email or name")
    status: Status | None = None
    country: str | None = Field(None, max_length=100, description="exact country")
    segment_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="only members of this segment")


class DeleteQuery(QueryModel):
    suppress: bool = Field(False, description="true: also put the address on the suppression list")


class SuppressionSearch(PageQuery):
    q: str = Field("", max_length=320, description="a substring of the address")
    limit: int = Field(100, ge=1, le=1000)


class SuppressionIn(ApiModel):
    email: str = Field(max_length=320)
    reason: Literal[suppression.REASONS] = "manual"  # type: ignore[valid-type]


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
    query=ContactSearch,
    tag="contacts",
    response=ContactPage,
)
def contacts_list(query: ContactSearch) -> Response:
    page = contacts.search_contacts(
        db(),
        query=query.q,
        status=query.status,
        country=query.country,
        segment_id=query.segment_id,
        after=query.after,
        limit=query.limit,
    )
    return jsonify(
        contacts=[contact_json(c) for c in page.contacts], total=page.total, next_after=page.next_after
    )


@route(
    "/contacts",
    "POST",
    role=Role.marketer,
    summary="Create a contact",
    body=ContactIn,
    response=ContactOut,
    tag="contacts",
    status=201,
)
def contacts_create(body: ContactIn) -> tuple[Response, int]:
    contact = contacts.create_contact(db(), body.changes())
    db().commit()
    return jsonify(contact_json(contact)), 201


@route(
    "/contacts/<int:contact_id>",
    "GET",
    role=Role.viewer,
    summary="A contact with its arm history (every send: campaign, arm, state, sent_at, outcomes)",
    tag="contacts",
    response=ContactWithSends,
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
    body=ContactPatch,
    response=ContactOut,
    tag="contacts",
)
def contacts_update(contact_id: int, body: ContactPatch) -> Response:
    contact = contacts.update_contact(db(), contact_id, body.changes())
    db().commit()
    return jsonify(contact_json(contact))


@route(
    "/contacts/<int:contact_id>",
    "DELETE",
    role=Role.admin,
    summary="Delete a contact with its sends and history",
    query=DeleteQuery,
    tag="contacts",
    status=204,
)
def contacts_delete(contact_id: int, query: DeleteQuery) -> tuple[str, int]:
    contacts.delete_contact(db(), contact_id, suppress=query.suppress)
    db().commit()
    return "", 204


def suppression_json(row: Suppression) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "reason": row.reason, "created_at": row.created_at.isoformat()}


@route(
    "/suppressions",
    "GET",
    role=Role.viewer,
    summary="The suppression list",
    query=SuppressionSearch,
    tag="contacts",
    response=SuppressionPage,
)
def suppressions_list(query: SuppressionSearch) -> Response:
    page = suppression.list_suppressions(db(), query=query.q, after=query.after, limit=query.limit)
    return jsonify(
        suppressions=[suppression_json(r) for r in page.rows], total=page.total, next_after=page.next_after
    )


@route(
    "/suppressions",
    "POST",
    role=Role.marketer,
    summary="Suppress an address (never sent to again); adding twice is harmless",
    body=SuppressionIn,
    tag="contacts",
    status=(200, 201),
    response=SuppressionOut,
)
def suppressions_add(body: SuppressionIn) -> tuple[Response, int]:
    row, created = suppression.add_suppression(db(), body.email, body.reason)
    db().commit()
    return jsonify(suppression_json(row)), 201 if created else 200


@route(
    "/suppressions/<path:email>",
    "DELETE",
    role=Role.admin,
    summary="Take an address off the suppression list",
    tag="contacts",
    status=204,
)
def suppressions_remove(email: str) -> tuple[str, int]:
    suppression.remove_suppression(db(), email)
    db().commit()
    return "", 204
