"""A person's data: consent history, export of everything held, erasure; retention on demand."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.responses import SignupFormList, SignupFormOut
from app.api.responses_people import ConsentHistory, ErasureReport, PersonData, SignupResult
from app.api.schema import ApiModel, Reason
from app.api.spec import route
from app.extensions import db, get_runtime
from app.signup import send_confirmation, setting
from campaigns.contacts.records import get_contact
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
    response=ConsentHistory,
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
    response=PersonData,
)
def contact_export(contact_id: int) -> Response:
    document = export.person_data(db(), contact_id)
    db().commit()
    response = jsonify(document)
    response.headers["Content-Disposition"] = f'attachment; filename="contact-{contact_id}.json"'
    return response


class EraseIn(ApiModel):
    reason: Reason


@route(
    "/contacts/<int:contact_id>/erase",
    "POST",
    role=Role.admin,
    summary="Erase a contact and everything derived from it; keeps a hash of the address suppressed",
    body=EraseIn,
    tag=TAG,
    response=ErasureReport,
)
def contact_erase(contact_id: int, body: EraseIn) -> Response:
    reason = body.reason.strip()
    if not reason:
        raise InputError("say why: an erasure needs a reason", where="reason")
    report = erasure.erase_contact(db(), get_runtime().redis, contact_id, reason)
    db().commit()
    return jsonify(report.as_dict())


class SignupIn(ApiModel):
    email: str = Field(min_length=1, max_length=320)
    name: str = Field("", max_length=300)
    form: str | None = Field(
        None, min_length=1, max_length=60, description="a signup form's slug: its wording and opt-in setting"
    )
    wording: str = Field("", max_length=2000, description="the consent text the person was shown")
    ip: str = Field("", max_length=64, description="the person's address, when you collected it")
    user_agent: str = Field("", max_length=500)
    attributes: dict[str, Any] = Field(default_factory=dict)
    double_opt_in: bool | None = Field(None, description="default: the form's, else the workspace's")


@route(
    "/signups",
    "POST",
    role=Role.marketer,
    summary="Sign a person up: pending with a confirmation email (double opt-in) or granted at once",
    body=SignupIn,
    response=SignupResult,
    tag=TAG,
    status=(200, 201),
)
def signups_create(body: SignupIn) -> tuple[Response, int]:
    form = None
    if body.form is not None:
        form = db().scalar(sa.select(SignupForm).where(SignupForm.slug == body.form))
        if form is None:
            raise InputError(f"there is no signup form {body.form!r}", where="form")
    double = body.double_opt_in
    if double is None:
        double = form.double_opt_in if form else bool(setting("DOUBLE_OPT_IN"))
    result, contact = signup.sign_up(
        db(),
        signup.Signup(
            email=body.email,
            name=body.name,
            wording=body.wording,
            ip=body.ip,
            user_agent=body.user_agent,
            attributes=body.attributes,
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


class SignupFormIn(ApiModel):
    slug: str = Field(min_length=1, max_length=60, description="the form's address: /s/<slug>")
    name: str = Field(min_length=1, max_length=200)
    wording: str = Field(
        min_length=1, max_length=5000, description="the consent text shown and stored with each signup"
    )
    double_opt_in: bool | None = None
    attributes: dict[str, Any] | None = Field(None, description="set on every contact who signs up here")
    from_email: str | None = Field(None, max_length=320)
    confirm_subject: str | None = Field(None, max_length=300)
    confirm_text: str | None = Field(
        None, max_length=20_000, description="plain text; {{ confirm_url }}, {{ form }}, {{ hours }}"
    )


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


@route(
    "/signup-forms", "GET", role=Role.viewer, summary="Hosted signup forms", tag=TAG, response=SignupFormList
)
def signup_forms_list() -> Response:
    forms = db().scalars(sa.select(SignupForm).order_by(SignupForm.id))
    return jsonify(forms=[form_json(f) for f in forms])


@route(
    "/signup-forms",
    "POST",
    role=Role.marketer,
    summary="Create a hosted signup form",
    body=SignupFormIn,
    tag=TAG,
    status=201,
    response=SignupFormOut,
)
def signup_forms_create(body: SignupFormIn) -> tuple[Response, int]:
    form = signup_forms.create_form(db(), body.model_dump(exclude_none=True))
    db().commit()
    return jsonify(form_json(form)), 201
