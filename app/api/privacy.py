"""A person's data: consent history, export of everything held, erasure; retention on demand."""

from __future__ import annotations

from flask import Response, jsonify

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.contacts import get_contact
from campaigns.errors import InputError
from campaigns.privacy import consent, erasure, export
from models import Role

TAG = "privacy"


@route(
    "/contacts/<int:contact_id>/consent",
    "GET",
    role=Role.viewer,
    summary="A contact's consent history, oldest first (how, when, from where, the wording shown)",
    tag=TAG,
)
def consent_history(contact_id: int) -> Response:
    get_contact(db(), contact_id)
    rows = consent.history(db(), contact_id)
    return jsonify(contact_id=contact_id, history=[consent.record_json(r) for r in rows])


@route(
    "/contacts/<int:contact_id>/export",
    "GET",
    role=Role.admin,
    summary="Everything held about one contact, as JSON (profile, consent, sends, events, interactions, "
    "recommendations shown); the export itself is audited",
    tag=TAG,
)
def contact_export(contact_id: int) -> Response:
    document = export.person_data(db(), contact_id)
    db().commit()
    response = jsonify(document)
    response.headers["Content-Disposition"] = f'attachment; filename="contact-{contact_id}.json"'
    return response


@route(
    "/contacts/<int:contact_id>/erase",
    "POST",
    role=Role.admin,
    summary="Erase a contact and everything derived from it; keeps a hash of the address suppressed",
    body={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "why (a request's reference)"}},
        "required": ["reason"],
    },
    tag=TAG,
)
def contact_erase(contact_id: int) -> Response:
    reason = json_body().get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError("say why: an erasure needs a reason", where="reason")
    report = erasure.erase_contact(db(), get_runtime().redis, contact_id, reason.strip())
    db().commit()
    return jsonify(report.as_dict())
