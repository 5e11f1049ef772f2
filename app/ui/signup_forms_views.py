"""Hosted signup forms: the list with each form's address and embed code, and a form to add one."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.privacy import signup_forms
from models import Role, SignupForm


@ui.route("/signup-forms")
@require_role(Role.viewer)
def signup_forms_page() -> str:
    forms = list(db().scalars(sa.select(SignupForm).order_by(SignupForm.id)))
    return render_template("ui/signup_forms.html", forms=forms, base_url=get_runtime().settings.base_url)


@ui.route("/signup-forms", methods=["POST"])
@require_role(Role.marketer)
def signup_forms_add() -> Response:
    values = {
        "slug": request.form.get("slug", "").strip(),
        "name": request.form.get("name", ""),
        "wording": request.form.get("wording", ""),
        "double_opt_in": request.form.get("double_opt_in") == "yes",
        "confirm_subject": request.form.get("confirm_subject", "") or "Please confirm your subscription",
        "confirm_text": request.form.get("confirm_text", ""),
    }
    if request.form.get("from_email", "").strip():
        values["from_email"] = request.form["from_email"].strip()
    return perform(
        lambda: signup_forms.create_form(db(), values),
        success=lambda form: f"Signup form {form.slug} is live at /s/{form.slug}.",
        back=url_for("ui.signup_forms_page"),
    )
