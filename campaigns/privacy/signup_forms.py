"""Hosted signup forms: validated creation (the slug is the form's public address)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts.records import check_attributes, normalize_email
from campaigns.errors import InputError, StateError
from campaigns.sending.headers import check_text
from models import SignupForm

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
FIELDS = (
    "slug",
    "name",
    "wording",
    "double_opt_in",
    "attributes",
    "from_email",
    "confirm_subject",
    "confirm_text",
)
LIMITS = {"name": 200, "wording": 5000, "confirm_subject": 300, "confirm_text": 20000}


def create_form(session: Session, values: Mapping[str, Any]) -> SignupForm:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InputError(f"unknown fields {unknown}; use {', '.join(FIELDS)}", where=unknown[0])
    slug = values.get("slug")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise InputError("slug must be 1-60 lower-case letters, digits or dashes", where="slug")
    fields: dict[str, Any] = {"slug": slug}
    for name, limit in LIMITS.items():
        raw = values.get(name)
        if raw is None:
            if name in ("name", "wording"):
                raise InputError(f"{name} is required", where=name)
            continue
        if not isinstance(raw, str) or (name in ("name", "wording") and not raw.strip()):
            raise InputError(f"{name} must be non-empty text", where=name)
        if len(raw) > limit:
            raise InputError(f"{name} is longer than {limit} characters", where=name)
        if name in ("name", "confirm_subject"):  # header values (the subject; the name in pages)
            check_text(raw, name)
        fields[name] = raw.strip() if name != "confirm_text" else raw
    if "double_opt_in" in values:
        if not isinstance(values["double_opt_in"], bool):
            raise InputError("double_opt_in must be true or false", where="double_opt_in")
        fields["double_opt_in"] = values["double_opt_in"]
    if values.get("attributes") is not None:
        fields["attributes"] = check_attributes(values["attributes"])
    if values.get("from_email"):
        fields["from_email"] = normalize_email(str(values["from_email"]))
    if session.scalar(sa.select(SignupForm.id).where(SignupForm.slug == slug)) is not None:
        raise StateError(f"a signup form {slug!r} already exists")
    form = SignupForm(**{"attributes": {}, **fields})
    session.add(form)
    session.flush()
    return form
