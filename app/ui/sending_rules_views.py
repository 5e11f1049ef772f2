"""Settings -> Sending rules: frequency caps per contact across campaigns and flows, and quiet hours
in each contact's time zone. Everyone signed in sees them; admins change them. The form is checked by
the API's schema (`app.api.sending_rules.SendingRulesIn`), each error shown at its field."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from pydantic import ValidationError
from werkzeug.wrappers import Response

from app.api.schema import input_error
from app.api.sending_rules import SendingRulesIn, rules_json
from app.auth import actor, current_user, require_role
from app.extensions import db
from app.ui.blueprint import ui
from campaigns.sending.cap_claims import save_rules
from models import Role

FIELDS = ("max_per_24h", "max_per_7d", "quiet_start", "quiet_end", "default_timezone")
NUMBERS = ("max_per_24h", "max_per_7d")


def _posted(form: Any) -> dict[str, Any]:
    """The form as the API's JSON body: blank is off (null), whole numbers are numbers; anything
    else is passed on as text, for the schema to refuse at its field."""
    body: dict[str, Any] = {}
    for name in FIELDS:
        text = (form.get(name) or "").strip()
        if name == "default_timezone":
            body[name] = text or "UTC"
        elif not text:
            body[name] = None
        elif name in NUMBERS and text.isdigit():
            body[name] = int(text)
        else:
            body[name] = text
    return body


@ui.route("/settings/sending-rules", methods=["GET", "POST"])
@require_role(Role.viewer)
def sending_rules_settings() -> str | Response | tuple[str, int]:
    values = {k: ("" if v is None else str(v)) for k, v in rules_json().items()}
    errors: dict[str, str] = {}
    if request.method == "POST":
        user = current_user()
        if user is None or not user.role_enum.allows(Role.admin):
            abort(403)
        body = _posted(request.form)
        values = {k: ("" if v is None else str(v)) for k, v in body.items()}
        try:
            rules = SendingRulesIn.model_validate(body)
        except ValidationError as exc:
            for problem in input_error(exc).details or []:
                where = problem["where"] if problem["where"] in FIELDS else "form"
                errors.setdefault(where, problem["error"])
        else:
            save_rules(db(), rules.model_dump(), actor())
            db().commit()
            flash("Sending rules saved: they apply to the next batch of every campaign and flow.", "success")
            return redirect(url_for("ui.sending_rules_settings"))
    page = render_template("ui/sending_rules.html", v=values, errors=errors)
    return (page, 400) if errors else page
