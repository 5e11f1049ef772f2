"""Templates: create, update (validated: a syntax error names the field and line), preview."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db
from campaigns.errors import InputError, NotFound
from campaigns.templates import preview, save_template
from models import Role, Template

TEMPLATE_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "subject": {"type": "string", "description": "Jinja2; may use {{ contact.first_name }}"},
        "layout_html": {"type": "string", "description": "must print {{ content }}"},
        "control_html": {"type": "string"},
        "ai_html": {"type": "string", "description": "loops over {{ recommendations }}"},
    },
    "required": ["name", "subject"],
}


def template_json(t: Template) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "subject": t.subject,
        "layout_html": t.layout_html,
        "control_html": t.control_html,
        "ai_html": t.ai_html,
        "updated_at": t.updated_at.isoformat(),
    }


@route("/templates", "GET", role=Role.viewer, summary="List templates", tag="templates")
def list_templates() -> Response:
    rows = db().scalars(sa.select(Template).order_by(Template.name))
    return jsonify(templates=[template_json(t) for t in rows])


@route(
    "/templates", "POST", role=Role.marketer, summary="Create a template", body=TEMPLATE_BODY, tag="templates"
)
def create_template() -> tuple[Response, int]:
    template = save_template(db(), json_body())
    db().commit()
    return jsonify(template_json(template)), 201


@route("/templates/<int:template_id>", "GET", role=Role.viewer, summary="One template", tag="templates")
def get_template(template_id: int) -> Response:
    template = db().get(Template, template_id)
    if template is None:
        raise NotFound(f"template {template_id} does not exist")
    return jsonify(template_json(template))


@route(
    "/templates/<int:template_id>",
    "PUT",
    role=Role.marketer,
    summary="Update a template",
    body=TEMPLATE_BODY,
    tag="templates",
)
def update_template(template_id: int) -> Response:
    template = save_template(db(), json_body(), template_id)
    db().commit()
    return jsonify(template_json(template))


@route(
    "/templates/<int:template_id>/preview",
    "GET",
    role=Role.viewer,
    tag="templates",
    summary="Render for a contact in either arm",
    query={"contact_id": "a contact id (default: a sample contact)", "arm": "treatment or control"},
)
def preview_template(template_id: int) -> Response:
    arm = request.args.get("arm", "control")
    if arm not in ("treatment", "control"):
        raise InputError("arm must be treatment or control", where="arm")
    raw = request.args.get("contact_id")
    try:
        contact_id = int(raw) if raw else None
    except ValueError as exc:
        raise InputError(f"not a contact id: {raw!r}", where="contact_id") from exc
    rendered = preview(db(), template_id, contact_id, ai=arm == "treatment")
    return jsonify(subject=rendered.subject, html=rendered.html, arm=arm)
