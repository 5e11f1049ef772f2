"""Templates: the editor (validated on save; an error names the part and line), and the preview for a
chosen contact with the control and AI versions side by side."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, abort, render_template, request, url_for
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from app.auth import require_role
from app.extensions import db
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from campaigns.contacts.records import normalize_email
from campaigns.content import templates as engine
from campaigns.content.render import FIELDS
from campaigns.errors import InputError
from models import Contact, Role, Template

PREVIEW_CSP = (
    "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
)
STARTER = {
    "subject": "Picked for you, {{ contact.first_name or 'friend' }}",
    "layout_html": "<html><body>\n<h1>Hello {{ contact.first_name or contact.name }}</h1>\n{{ content }}\n"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n</body></html>',
    "control_html": '<p>Our best sellers this week are waiting: <a href="https://shop.example/best">see them</a>.</p>',
    "ai_html": "<ul>\n{% for item in recommendations %}\n"
    '  <li><a href="{{ item.url }}">{{ item.name }}</a> {{ "%.2f"|format(item.price) }}</li>\n'
    "{% endfor %}\n</ul>",
}


@ui.route("/templates")
@require_role(Role.viewer)
def templates() -> str:
    rows = db().scalars(sa.select(Template).order_by(Template.name)).all()
    return render_template("ui/templates.html", templates=rows)


def _editor(template: Template | None, values: dict[str, str], error: InputError | None = None) -> str:
    """The editor; after a refused save every problem shows at its field at once."""
    problems = (error.details if error is not None and isinstance(error.details, list) else None) or (
        [{"where": error.where, "error": error.message}] if error is not None else []
    )
    errors: dict[str, str] = {}
    for problem in problems:
        where = str(problem.get("where") or "")
        field = where.split(",")[0].strip()
        if field in (*FIELDS, "name") and field not in errors:
            errors[field] = f"{where}: {problem.get('error')}" if "," in where else str(problem.get("error"))
    return render_template(
        "ui/template_edit.html",
        template=template,
        values=values,
        error=describe(error) if error and len(problems) == 1 else "",
        problems=len(problems),
        errors=errors,
    )


@ui.route("/templates/new")
@require_role(Role.marketer)
def templates_new() -> str:
    return _editor(None, {"name": "", **STARTER})


@ui.route("/templates/<int:template_id>")
@require_role(Role.viewer)
def templates_detail(template_id: int) -> str:
    template = db().get(Template, template_id) or abort(404)
    values = {"name": template.name, **{f: getattr(template, f) for f in FIELDS}}
    return _editor(template, values)


@ui.route("/templates/new", methods=["POST"])
@ui.route("/templates/<int:template_id>", methods=["POST"])
@require_role(Role.marketer)
def templates_save(template_id: int | None = None) -> BaseResponse | tuple[str, int]:
    template = db().get(Template, template_id) if template_id else None
    if template_id and template is None:
        abort(404)
    values = {name: request.form.get(name, "") for name in ("name", *FIELDS)}
    try:
        saved = engine.save_template(db(), dict(values), template_id)
    except InputError as exc:
        db().rollback()
        return _editor(template, values, exc), 400
    return perform(
        lambda: saved,
        success=lambda t: f"Saved template {t.name}.",
        back=lambda t: url_for("ui.templates_preview", template_id=t.id),
    )


def _chosen_contact() -> tuple[Contact | None, str]:
    """The contact named in ?contact= (an email or an id); None means the sample contact."""
    raw = request.args.get("contact", "").strip()
    if not raw:
        return None, ""
    if raw.isdigit():
        contact = db().get(Contact, int(raw))
    else:
        try:
            contact = db().scalar(sa.select(Contact).where(Contact.email == normalize_email(raw)))
        except InputError:
            contact = None
    return contact, "" if contact else f"no contact {raw!r}: showing the sample contact"


@ui.route("/templates/<int:template_id>/preview")
@require_role(Role.viewer)
def templates_preview(template_id: int) -> str:
    template = db().get(Template, template_id) or abort(404)
    contact, problem = _chosen_contact()
    arms: dict[str, Any] = {}
    for arm, ai in (("control", False), ("ai", True)):
        try:
            rendered = engine.preview(db(), template_id, contact.id if contact else None, ai)
            arms[arm] = {"subject": rendered.subject, "error": ""}
        except Exception as exc:  # shown, not raised: a preview must say what is wrong
            arms[arm] = {"subject": "", "error": str(exc)}
    return render_template(
        "ui/template_preview.html",
        template=template,
        contact=contact,
        contact_arg=request.args.get("contact", ""),
        problem=problem,
        arms=arms,
    )


@ui.route("/templates/<int:template_id>/preview/<arm>.html")
@require_role(Role.viewer)
def templates_preview_html(template_id: int, arm: str) -> Response:
    if arm not in ("control", "ai"):
        abort(404)
    contact, _ = _chosen_contact()
    try:
        html = engine.preview(db(), template_id, contact.id if contact else None, arm == "ai").html
    except Exception as exc:  # the frame shows the failure instead of the email
        html = f"<p>This version fails to render: {escape(str(exc))}</p>"
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response
