"""A person's data: consent history, export of everything held, erasure; retention on demand."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db, get_runtime
from app.signup import send_confirmation, setting
from campaigns.contacts import get_contact
from campaigns.errors import InputError
from campaigns.privacy import consent, erasure, export, signup, signup_forms
from campaigns.privacy.audit import current_actor
from models import Role, SignupForm

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


SIGNUP_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "name": {"type": "string"},
        "form": {"type": "string", "description": "a signup form's slug: its wording and opt-in setting"},
        "wording": {"type": "string", "description": "the consent text the person was shown"},
        "ip": {"type": "string", "description": "the person's address, when you collected it"},
        "user_agent": {"type": "string"},
        "attributes": {"type": "object"},
        "double_opt_in": {"type": "boolean", "description": "default: the form's, else the workspace's"},
    },
    "required": ["email"],
}


def _text(body: dict[str, Any], name: str, limit: int = 2000) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InputError(f"{name} must be text", where=name)
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters", where=name)
    return value


@route(
    "/signups",
    "POST",
    role=Role.marketer,
    summary="Sign a person up: pending with a confirmation email (double opt-in) or granted at once",
    body=SIGNUP_BODY,
    response={
        "type": "object",
        "properties": {
            "contact_id": {"type": "integer"},
            "state": {"enum": ["pending", "granted", "already"]},
        },
    },
    tag=TAG,
)
def signups_create() -> tuple[Response, int]:
    body = json_body()
    form = None
    if body.get("form") is not None:
        slug = _text(body, "form", 60)
        form = db().scalar(sa.select(SignupForm).where(SignupForm.slug == slug))
        if form is None:
            raise InputError(f"there is no signup form {slug!r}", where="form")
    double = body.get("double_opt_in")
    if double is None:
        double = form.double_opt_in if form else bool(setting("DOUBLE_OPT_IN"))
    if not isinstance(double, bool):
        raise InputError("double_opt_in must be true or false", where="double_opt_in")
    if not isinstance(body.get("email"), str):
        raise InputError("email is required", where="email")
    attributes = body.get("attributes") or {}
    result, contact = signup.sign_up(
        db(),
        signup.Signup(
            email=body["email"],
            name=_text(body, "name", 300),
            wording=_text(body, "wording"),
            ip=_text(body, "ip", 64),
            user_agent=_text(body, "user_agent", 500),
            attributes=attributes,
        ),
        method="api",
        source=current_actor().name,
        double_opt_in=double,
        form=form,
    )
    db().commit()
    if result.state == "pending":
        send_confirmation(contact, form)
    return jsonify(
        contact_id=result.contact_id, state=result.state
    ), 201 if result.state != "already" else 200


FORM_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "slug": {"type": "string", "description": "the form's address: /s/<slug>"},
        "name": {"type": "string"},
        "wording": {"type": "string", "description": "the consent text shown and stored with each signup"},
        "double_opt_in": {"type": "boolean"},
        "attributes": {"type": "object", "description": "set on every contact who signs up here"},
        "from_email": {"type": "string"},
        "confirm_subject": {"type": "string"},
        "confirm_text": {
            "type": "string",
            "description": "plain text; {{ confirm_url }}, {{ form }}, {{ hours }}",
        },
    },
    "required": ["slug", "name", "wording"],
}


def form_json(form: SignupForm) -> dict[str, Any]:
    return {
        "id": form.id,
        "slug": form.slug,
        "name": form.name,
        "wording": form.wording,
        "double_opt_in": form.double_opt_in,
        "attributes": form.attributes,
        "from_email": form.from_email,
        "confirm_subject": form.confirm_subject,
        "confirm_text": form.confirm_text,
        "url": get_runtime().settings.base_url + f"/s/{form.slug}",
        "created_at": form.created_at.isoformat(),
    }


@route("/signup-forms", "GET", role=Role.viewer, summary="Hosted signup forms", tag=TAG)
def signup_forms_list() -> Response:
    forms = db().scalars(sa.select(SignupForm).order_by(SignupForm.id))
    return jsonify(forms=[form_json(f) for f in forms])


@route(
    "/signup-forms",
    "POST",
    role=Role.marketer,
    summary="Create a hosted signup form",
    body=FORM_BODY,
    tag=TAG,
)
def signup_forms_create() -> tuple[Response, int]:
    form = signup_forms.create_form(db(), json_body())
    db().commit()
    return jsonify(form_json(form)), 201
