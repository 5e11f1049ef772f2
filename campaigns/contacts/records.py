"""Contacts: the normalized email that identifies one, and the single-contact operations.

A contact's email is its identity: imports upsert on it, the suppression list matches on it and
sends go to it. `normalize_email` (campaigns.contacts.addresses) is the one place that decides what "the same
address" means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.json_ops import check_key
from campaigns.audience.rules import segment_filter, segment_rules
from campaigns.contacts.addresses import normalize_email
from campaigns.errors import InputError, NotFound, StateError
from campaigns.sending.headers import check_text
from models import Campaign, Contact, Send, Suppression, utcnow
from models.contacts import CONTACT_STATUSES

CONSENT_VALUES: Mapping[str, bool] = {
    "true": True, "yes": True, "y": True, "1": True, "t": True, "on": True, "opt-in": True,
    "false": False, "no": False, "n": False, "0": False, "f": False, "off": False, "opt-out": False,
}  # fmt: skip
TEXT_LIMITS: Mapping[str, int] = {"name": 300, "country": 100, "external_id": 100}
EDITABLE = ("email", "name", "country", "timezone", "consent", "status", "external_id", "attributes")
_INT = re.compile(r"^-?(0|[1-9][0-9]{0,17})$")
_FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")


def parse_timezone(raw: str) -> str:
    """An IANA zone name ("Europe/London"); empty means unset (""), so the workspace's
    `default_timezone` applies to the contact (campaigns.sending.local_time.zone)."""
    name = raw.strip()
    if not name:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise InputError(
            f"unknown time zone {raw!r} (use an IANA name like Europe/London)", where="timezone"
        ) from None
    return name


def parse_consent(raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    value = CONSENT_VALUES.get(str(raw).strip().lower())
    if value is None:
        raise InputError(f"consent must be yes/no, true/false or 1/0, not {raw!r}", where="consent")
    return value


def parse_status(raw: str) -> str:
    status = str(raw).strip().lower()
    if status not in CONTACT_STATUSES:
        raise InputError(f"status must be one of {', '.join(CONTACT_STATUSES)}, not {raw!r}", where="status")
    return status


def clean_text(field: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise InputError(f"{field} must be text", where=field)
    text = " ".join(raw.split())  # line breaks and tabs become spaces
    check_text(text, field)  # any other control character is refused (names go into headers)
    limit = TEXT_LIMITS[field]
    if len(text) > limit:
        raise InputError(f"{field} is longer than {limit} characters", where=field)
    return text


def typed_value(text: str) -> Any:
    """An attribute cell as JSON: true/false, canonical integers and decimals become numbers,
    anything else stays text ("007" and "+44 20" stay text, so codes and phones survive)."""
    value = text.strip()
    lower = value.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


ATTRIBUTES_MAX_BYTES = 64 * 1024  # a contact's attributes, as JSON (rendered into every email it gets)


def check_attributes(value: Any, where: str = "attributes") -> dict[str, Any]:
    """A contact's attributes from the API or a signup: an object of named values, at most
    `ATTRIBUTES_MAX_BYTES` of JSON (the request body limit is far larger)."""
    if not isinstance(value, dict):
        raise InputError("attributes must be a JSON object", where=where)
    for key in value:
        check_key(key, f"{where}.{key}")
        if len(key) > 100:
            raise InputError("an attribute name must be at most 100 characters", where=f"{where}.{key}")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise InputError(
            f"attributes are {size:,} bytes of JSON; at most {ATTRIBUTES_MAX_BYTES:,}", where=where
        )
    return dict(value)


def contact_fields(values: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validated columns from API input; `partial` for updates. Raises InputError naming the field."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InputError(
            f"unknown fields {sorted(unknown)}; use {', '.join(EDITABLE)}", where=sorted(unknown)[0]
        )
    if not partial and "email" not in values:
        raise InputError("email is required", where="email")
    fields: dict[str, Any] = {}
    for name, raw in values.items():
        if name == "email":
            fields[name] = normalize_email(raw)
        elif name in TEXT_LIMITS:
            if name == "external_id" and raw is None:
                fields[name] = None
            else:
                fields[name] = clean_text(name, raw) or (None if name == "external_id" else "")
        elif name == "timezone":
            fields[name] = parse_timezone(raw if isinstance(raw, str) else "?")
        elif name == "consent":
            if not isinstance(raw, bool):
                raise InputError("consent must be true or false", where="consent")
            fields[name] = raw
        elif name == "status":
            fields[name] = parse_status(raw)
        else:
            fields[name] = check_attributes(raw)
    return fields


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return contact


def _check_unique(session: Session, fields: Mapping[str, Any], contact_id: int | None) -> None:
    for name in ("email", "external_id"):
        value = fields.get(name)
        if value is None:
            continue
        column = getattr(Contact, name)
        other = session.scalar(sa.select(Contact.id).where(column == value, Contact.id != (contact_id or -1)))
        if other is not None:
            raise StateError(f"contact {other} already has {name} {value!r}")


def create_contact(session: Session, values: Mapping[str, Any]) -> Contact:
    fields = contact_fields(values, partial=False)
    _check_unique(session, fields, None)
    if fields.get("status", "active") == "unsubscribed":
        fields["unsubscribed_at"] = utcnow()
    contact = Contact(**{"attributes": {}, **fields})
    session.add(contact)
    session.flush()
    from campaigns.privacy.erasure import suppress_again

    suppress_again(session, [contact.email])
    _consent_changed(session, contact.id, contact.consent)
    from campaigns.flows.triggers import CONTACT_CREATED, record_event

    record_event(session, contact.id, CONTACT_CREATED, key=f"{CONTACT_CREATED}:{contact.id}")
    return contact


def _consent_changed(session: Session, contact_id: int, granted: bool) -> None:
    """A person or a token set consent through the API or the UI: the history says who."""
    from campaigns.privacy import audit, consent

    actor = audit.current_actor()
    method = actor.via if actor.via in ("api", "ui") else "api"
    state = "granted" if granted else "withdrawn"
    consent.record(session, contact_id, state, method, source="web UI" if method == "ui" else "API")


def update_contact(session: Session, contact_id: int, values: Mapping[str, Any]) -> Contact:
    """Change the given fields. `attributes` are merged; an attribute set to null is removed."""
    contact = get_contact(session, contact_id)
    fields = contact_fields(values, partial=True)
    _check_unique(session, fields, contact_id)
    if "attributes" in fields:
        merged = {**contact.attributes, **fields.pop("attributes")}
        contact.attributes = check_attributes({k: v for k, v in merged.items() if v is not None})
    status = fields.get("status")
    if status is not None and status != contact.status:
        contact.unsubscribed_at = utcnow() if status == "unsubscribed" else None
    consent_before = contact.consent
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.updated_at = utcnow()
    session.flush()
    if contact.consent != consent_before:
        _consent_changed(session, contact.id, contact.consent)
    return contact


def delete_contact(session: Session, contact_id: int, suppress: bool = False) -> None:
    """Delete the contact with its send ledger and history (campaign results keep their counts);
    `suppress` also keeps its address off every future import's sends by adding it to the
    suppression list. For a person's erasure request use `campaigns.privacy.erasure`."""
    from campaigns.privacy.folding import fold_sends

    contact = get_contact(session, contact_id)
    fold_sends(session, sa.select(Send.id).where(Send.contact_id == contact_id))  # results keep counting them
    if (
        suppress
        and session.scalar(sa.select(Suppression.id).where(Suppression.email == contact.email)) is None
    ):
        session.add(Suppression(email=contact.email, reason="deleted"))
    session.delete(contact)
    session.flush()


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    total: int
    next_after: int | None  # pass as `after` for the next page; None on the last page


SORTABLE = {"email": Contact.email, "name": Contact.name, "country": Contact.country,
            "status": Contact.status, "created_at": Contact.created_at}  # fmt: skip


def _search_conditions(
    session: Session,
    query: str,
    status: str | None,
    country: str | None,
    segment_id: int | None,
    now: datetime | None,
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.strip():
        pattern = (
            "%" + query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        conditions.append(
            sa.or_(Contact.email.like(pattern, escape="\\"), Contact.name.ilike(pattern, escape="\\"))
        )
    if status:
        conditions.append(Contact.status == parse_status(status))
    if country:
        conditions.append(Contact.country == country)
    if segment_id is not None:
        conditions.append(segment_filter(segment_rules(session, segment_id), now or utcnow()))
    return conditions


def sorted_contacts(
    session: Session,
    *,
    query: str = "",
    status: str | None = None,
    segment_id: int | None = None,
    sort: str = "email",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Contact], int]:
    """One page of contacts ordered by a column (ties by id), and how many match in all."""
    conditions = _search_conditions(session, query, status, None, segment_id, None)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Contact).where(*conditions)) or 0)
    column = SORTABLE.get(sort, Contact.email)
    order = (
        [column.desc().nulls_last(), Contact.id.desc()]
        if descending
        else [column.asc().nulls_last(), Contact.id]
    )
    rows = session.scalars(sa.select(Contact).where(*conditions).order_by(*order).offset(offset).limit(limit))
    return list(rows), total


def search_contacts(
    session: Session,
    *,
    query: str = "",
    status: str | None = None,
    country: str | None = None,
    segment_id: int | None = None,
    after: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> ContactPage:
    """Contacts in id order, a page at a time (keyset: `after` is the last id of the previous page).

    `query` matches a substring of the email or the name, in any case."""
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000", where="limit")
    conditions = _search_conditions(session, query, status, country, segment_id, now)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Contact).where(*conditions)) or 0)
    page = list(
        session.scalars(
            sa.select(Contact).where(Contact.id > after, *conditions).order_by(Contact.id).limit(limit + 1)
        )
    )
    more = len(page) > limit
    page = page[:limit]
    return ContactPage(page, total, page[-1].id if more else None)


def send_history(session: Session, contact_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The contact's sends, newest first: campaign, arm, content, state and outcomes."""
    get_contact(session, contact_id)
    rows = session.execute(
        sa.select(Send, Campaign.name)
        .join(Campaign, Campaign.id == Send.campaign_id)
        .where(Send.contact_id == contact_id)
        .order_by(Send.queued_at.desc(), Send.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "send_id": send.id,
            "campaign_id": send.campaign_id,
            "campaign": name,
            "wave_id": send.wave_id,
            "rollout_id": send.rollout_id,
            "stage_index": send.stage_index,
            "arm": send.arm,
            "content": send.content,
            "state": send.state,
            "queued_at": send.queued_at,
            "sent_at": send.sent_at,
            "opened_at": send.opened_at,
            "clicked_at": send.clicked_at,
            "converted_at": send.converted_at,
            "revenue": send.revenue,
            "unsubscribed_at": send.unsubscribed_at,
            "error": send.error,
        }
        for send, name in rows
    ]
