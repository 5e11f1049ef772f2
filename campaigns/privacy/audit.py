"""The audit log of everything, recorded in one place: a SQLAlchemy `after_flush` listener sees every
insert, update and delete of an audited model through the ORM (API, UI, CLI and workers alike) and
appends one row per change to `audit_log`, in the same transaction as the change.

Who acted comes from `acting()` (a context variable: the CLI, jobs) or from a resolver the web app
installs (the request's user or API token). Changes with neither are recorded as `system`.

Contacts are recorded under a keyed pseudonym instead of their id, and personal fields (email, name,
external id, attributes) as keyed fingerprints: the log outlives an erasure, the person does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, UOWTransaction

from models import (
    ApiToken,
    AuditEntry,
    Campaign,
    Contact,
    DkimKey,
    ModelVersion,
    Rollout,
    RolloutAudit,
    Segment,
    SignupForm,
    Suppression,
    Template,
    User,
    Webhook,
    WorkspaceSetting,
    utcnow,
)
from models.contacts import ImportRun


@dataclass(frozen=True)
class Actor:
    name: str  # a user's email, "email (token mr_ab12…)", "cli:alice", "system"
    via: str  # ui | api | cli | worker | signup | system


SYSTEM = Actor("system", "system")
_process_actor = SYSTEM
_acting: ContextVar[Actor | None] = ContextVar("mailramp_audit_actor", default=None)
_resolver: Callable[[], Actor | None] | None = None
_key: bytes = b"mailramp-audit"
AUDIT_TABLE: sa.Table = AuditEntry.__table__  # type: ignore[assignment]


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """Attribute every change made inside the block to `actor`."""
    token = _acting.set(actor)
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor() -> Actor:
    actor = _acting.get()
    if actor is None and _resolver is not None:
        actor = _resolver()
    return actor or _process_actor


def set_process_actor(actor: Actor) -> None:
    """Who acts when nothing else says so: `system`, or `worker` in worker processes."""
    global _process_actor
    _process_actor = actor


def set_resolver(resolver: Callable[[], Actor | None] | None) -> None:
    """The web app's way to say who makes the current request (None outside a request)."""
    global _resolver
    _resolver = resolver


@dataclass(frozen=True)
class Policy:
    object_type: str
    personal: tuple[str, ...] = ()  # stored as keyed fingerprints, never in clear
    secret: tuple[str, ...] = ()  # stored as "<changed>"
    ignore: tuple[str, ...] = ("updated_at",)  # bookkeeping, not a change anyone made
    actions: tuple[str, ...] = ("create", "update", "delete")
    pseudonymous: bool = False  # the object's id is personal data too (contacts)


POLICIES: dict[type, Policy] = {
    User: Policy("user", secret=("password_hash",)),
    ApiToken: Policy("api_token", secret=("token_hash",), ignore=("last_used_at",)),
    Template: Policy("template"),
    Segment: Policy("segment"),
    Campaign: Policy("campaign", ignore=("updated_at", "last_run_at")),
    Contact: Policy("contact", personal=("email", "name", "external_id", "attributes"), pseudonymous=True),
    Suppression: Policy("suppression", personal=("email",)),
    Webhook: Policy("webhook", secret=("secret", "url")),  # Slack/PagerDuty URLs are credentials
    ModelVersion: Policy("model_version"),
    Rollout: Policy("rollout"),
    SignupForm: Policy("signup_form"),
    ImportRun: Policy("import_run", actions=("create",)),
    WorkspaceSetting: Policy("setting", ignore=("updated_at", "updated_by")),
    DkimKey: Policy("dkim_key", secret=("private_key_pem",)),
}


def install(secret_key: str) -> None:
    """Key the pseudonyms and start recording (once per process; later calls only re-key)."""
    global _key
    _key = hashlib.sha256(f"mailramp-audit:{secret_key}".encode()).digest()
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)


def contact_ref(contact_id: int) -> str:
    """The audit log's stable name for a contact: the same for its whole life, meaningless after."""
    return "c_" + hmac.new(_key, f"contact:{contact_id}".encode(), hashlib.sha256).hexdigest()[:20]


def fingerprint(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(_plain(value), sort_keys=True, default=str)
    return "hmac:" + hmac.new(_key, text.encode(), hashlib.sha256).hexdigest()[:16]


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: str | int = "",
    *,
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """An explicit entry for what is not a row change (an erasure, an export, a bulk import)."""
    who = actor or current_actor()
    entry = AuditEntry(
        at=utcnow(),
        actor=who.name[:400],
        via=who.via,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary,
        before=_plain(before or {}),
        after=_plain(after or {}),
    )
    session.add(entry)
    return entry


def _plain(value: Any) -> Any:
    """JSON-safe copy: datetimes as ISO text, enums as their value, unknowns as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return str(value)


def _shown(policy: Policy, key: str, value: Any) -> Any:
    if key in policy.secret:
        return "<set>" if value else ""
    if key in policy.personal:
        return fingerprint(value)
    return _plain(value)


def _columns(obj: Any) -> list[str]:
    return [attr.key for attr in sa.inspect(obj).mapper.column_attrs]


def _object_id(policy: Policy, obj: Any) -> str:
    ident = getattr(obj, "id", None)
    if ident is None and isinstance(obj, WorkspaceSetting):  # keyed by name
        ident = obj.key
    if ident is None:
        return ""
    return contact_ref(ident) if policy.pseudonymous else str(ident)


def _snapshot(policy: Policy, obj: Any) -> dict[str, Any]:
    state = sa.inspect(obj)
    values: dict[str, Any] = {}
    for key in _columns(obj):
        if key in policy.ignore or key == "id" or key in state.unloaded:
            continue
        values[key] = _shown(policy, key, state.dict.get(key))
    return values


def _changes(policy: Policy, obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = sa.inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in _columns(obj):
        if key in policy.ignore:
            continue
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new and history.deleted:
            continue
        before[key] = _shown(policy, key, old)
        after[key] = _shown(policy, key, new)
    return before, after


def _rollout_transition(row: RolloutAudit, actor: Actor) -> dict[str, Any]:
    return {
        "at": row.at,
        "actor": row.actor[:400],
        "via": actor.via,
        "action": row.action,
        "object_type": "rollout",
        "object_id": str(row.rollout_id),
        "summary": row.reason,
        "before": {"state": row.from_state, "stage": row.from_stage},
        "after": {"state": row.to_state, "stage": row.to_stage},
    }


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    """Runs inside the flush, after its SQL: ids of new rows exist, attribute history is intact."""
    rows: list[dict[str, Any]] = []
    actor: Actor | None = None
    for obj in session.new:
        if isinstance(obj, RolloutAudit):
            actor = actor or current_actor()
            rows.append(_rollout_transition(obj, actor))
            continue
        policy = POLICIES.get(type(obj))
        if policy is not None and "create" in policy.actions:
            rows.append(_entry(policy, "create", obj, {}, _snapshot(policy, obj)))
    for obj in session.dirty:
        policy = POLICIES.get(type(obj))
        if policy is None or "update" not in policy.actions:
            continue
        before, after = _changes(policy, obj)
        if after or before:
            rows.append(_entry(policy, "update", obj, before, after))
    for obj in session.deleted:
        policy = POLICIES.get(type(obj))
        if policy is not None and "delete" in policy.actions:
            rows.append(_entry(policy, "delete", obj, _snapshot(policy, obj), {}))
    if not rows:
        return
    actor = actor or current_actor()
    now = utcnow()
    for row in rows:
        row.setdefault("at", now)
        row.setdefault("actor", actor.name[:400])
        row.setdefault("via", actor.via)
    session.connection().execute(sa.insert(AUDIT_TABLE), rows)


def _entry(
    policy: Policy, action: str, obj: Any, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    return {
        "action": action,
        "object_type": policy.object_type,
        "object_id": _object_id(policy, obj),
        "summary": _summary(policy, obj),
        "before": before,
        "after": after,
    }


def _summary(policy: Policy, obj: Any) -> str:
    if policy.personal or policy.pseudonymous:
        return ""
    for attr in ("name", "email", "url", "slug", "filename"):
        if attr in policy.secret:
            continue
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return value[:200]
    return ""
