"""Template records: validated when saved, compiled once per version, previewed for any contact."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.content.render import (
    FIELDS,
    CompiledTemplate,
    Rendered,
    contact_context,
    render,
    template_problems,
    validate_template,
)
from campaigns.errors import InputError, NotFound, all_at_once
from campaigns.runtime import current_settings
from models import Contact, Template

_CACHE_SIZE = 64
_compiled: OrderedDict[tuple[int, datetime], CompiledTemplate] = OrderedDict()


def save_template(session: Session, fields: dict[str, Any], template_id: int | None = None) -> Template:
    """Create or update; nothing is stored unless every part compiles and renders a sample."""
    template = session.get(Template, template_id) if template_id is not None else Template()
    if template is None:
        raise NotFound(f"template {template_id} does not exist")
    problems: list[InputError] = []  # every problem at once: a form shows each at its field
    name = str(fields.get("name", template.name or "")).strip()
    if not name:
        problems.append(InputError("a name is required", where="name"))
    clash = session.scalar(sa.select(Template.id).where(Template.name == name, Template.id != template_id))
    if name and clash is not None:
        problems.append(InputError(f"a template named {name!r} exists already", where="name"))
    values: dict[str, Any] = {f: fields.get(f, getattr(template, f, None)) for f in FIELDS}
    usable = True
    for field, value in values.items():
        if value is None:
            values[field] = "{{ content }}" if field == "layout_html" else ""
        elif not isinstance(value, str):
            problems.append(InputError("must be a string", where=field))
            usable = False
        elif len(value.encode()) > (limit := current_settings().template_max_bytes):
            problems.append(InputError(f"is over {limit:,} bytes (TEMPLATE_MAX_BYTES)", where=field))
            usable = False
    if usable:
        problems += template_problems(**values)
    if problems:
        raise all_at_once(problems)
    template.name = name
    for field, value in values.items():
        setattr(template, field, value)
    session.add(template)
    session.flush()
    return template


def compiled(template: Template) -> CompiledTemplate:
    """Compiled once per (template, version) in this process, not once per email."""
    key = (template.id, template.updated_at)
    hit = _compiled.get(key)
    if hit is None:
        hit = validate_template(
            template.subject, template.layout_html, template.control_html, template.ai_html
        )
        _compiled[key] = hit
        if len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    return hit


def preview(session: Session, template_id: int, contact_id: int | None, ai: bool) -> Rendered:
    """Render for a real contact (or the sample) in either arm, with live recommendations."""
    from campaigns.recommender.service import score_contact

    template = session.get(Template, template_id)
    if template is None:
        raise NotFound(f"template {template_id} does not exist")
    recommendations: list[dict[str, Any]] = []
    if contact_id is None:
        from campaigns.content.render import SAMPLE_CONTACT, SAMPLE_RECOMMENDATIONS

        context, recommendations = dict(SAMPLE_CONTACT), list(SAMPLE_RECOMMENDATIONS)
    else:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id} does not exist")
        context = contact_context(
            contact.id, contact.email, contact.name, contact.country, contact.timezone, contact.attributes
        )
        if ai:
            recommendations = [asdict(r) for r in score_contact(session, None, contact.id)]
    return render(
        compiled(template),
        ai=ai,
        contact=context,
        recommendations=recommendations,
        extra={"unsubscribe_url": "#unsubscribe"},
    )


def sample_subject(source: str) -> str:
    """A subject line as the sample contact would read it (control arm): what lists and pages show
    instead of its Jinja source. A subject that fails to render shows as its source."""
    from campaigns.content.render import SAMPLE_CONTACT, render_subject

    if "{" not in source:
        return source
    key = ("subject", source)
    hit = _subjects.get(key)
    if hit is None:
        try:
            hit = render_subject(source, {"contact": dict(SAMPLE_CONTACT), "recommendations": []})
        except Exception:  # a broken or over-limit subject shows as written
            hit = source
        _subjects[key] = hit
        if len(_subjects) > _CACHE_SIZE:
            _subjects.popitem(last=False)
    return hit


_subjects: OrderedDict[tuple[str, str], str] = OrderedDict()
