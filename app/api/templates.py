"""Templates: create, update (validated: a syntax error names the field and line), preview."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.responses import TemplateList, TemplateOut, TemplatePreview
from app.api.schema import BIGINT_MAX, ApiModel, QueryModel
from app.api.spec import route
from app.extensions import db
from campaigns.content.templates import preview, save_template
from campaigns.errors import NotFound
from models import Role, Template


class TemplateIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(max_length=2000, description="Jinja2; may use {{ contact.first_name }}")
    layout_html: str | None = Field(None, description="must print {{ content }}")
    control_html: str | None = None
    ai_html: str | None = Field(None, description="loops over {{ recommendations }}")


class PreviewQuery(QueryModel):
    contact_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="default: a sample contact")
    arm: Literal["treatment", "control"] = "control"


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


@route(
    "/templates", "GET", role=Role.viewer, summary="List templates", tag="templates", response=TemplateList
)
def list_templates() -> Response:
    rows = db().scalars(sa.select(Template).order_by(Template.name))
    return jsonify(templates=[template_json(t) for t in rows])


@route(
    "/templates",
    "POST",
    role=Role.marketer,
    summary="Create a template",
    body=TemplateIn,
    tag="templates",
    status=201,
    response=TemplateOut,
)
def create_template(body: TemplateIn) -> tuple[Response, int]:
    template = save_template(db(), body.model_dump(exclude_none=True))
    db().commit()
    return jsonify(template_json(template)), 201


@route(
    "/templates/<int:template_id>",
    "GET",
    role=Role.viewer,
    summary="One template",
    tag="templates",
    response=TemplateOut,
)
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
    body=TemplateIn,
    tag="templates",
    response=TemplateOut,
)
def update_template(template_id: int, body: TemplateIn) -> Response:
    template = save_template(db(), body.model_dump(exclude_none=True), template_id)
    db().commit()
    return jsonify(template_json(template))


@route(
    "/templates/<int:template_id>/preview",
    "GET",
    role=Role.viewer,
    tag="templates",
    summary="Render for a contact in either arm",
    query=PreviewQuery,
    response=TemplatePreview,
)
def preview_template(template_id: int, query: PreviewQuery) -> Response:
    rendered = preview(db(), template_id, query.contact_id, ai=query.arm == "treatment")
    return jsonify(subject=rendered.subject, html=rendered.html, arm=query.arm)
