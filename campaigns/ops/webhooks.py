"""Webhook settings: create, change, delete, list; and how they and their deliveries are shown.

The secret signs every request (see `campaigns.ops.alerts`); it is generated when not given and shown
once, on creation. Only http(s) URLs are accepted, and none that is or resolves to a loopback,
private, link-local or otherwise non-public address (a webhook must not reach the platform's own
network, nor a cloud metadata service at 169.254.169.254) unless the admin setting
WEBHOOK_ALLOW_PRIVATE allows it. Saving a webhook checks an address or `localhost` at once; every
delivery checks again after resolving the host name (a name may resolve elsewhere later), and
deliveries do not follow redirects.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError, NotFound
from campaigns.ops.alerts import FORMATS
from campaigns.ops.webhook_targets import target_problem
from models import Webhook, WebhookDelivery

EDITABLE = ("url", "secret", "format", "events", "name", "active")
DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed")


def _clean(raw: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    unknown = set(raw) - set(EDITABLE)
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(sorted(unknown))}", where="body")
    out: dict[str, Any] = {}
    if "url" in raw or creating:
        url = raw.get("url")
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2000:  # type: ignore[arg-type]
            raise InputError("must be an http or https URL", where="url")
        problem = target_problem(url, resolve=False)  # type: ignore[arg-type]
        if problem:
            raise InputError(problem, where="url")
        out["url"] = url
    if "secret" in raw:
        secret = raw["secret"]
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise InputError("must be text of 16 to 200 characters", where="secret")
        out["secret"] = secret
    if "format" in raw:
        if raw["format"] not in FORMATS:
            raise InputError(f"must be one of {', '.join(FORMATS)}", where="format")
        out["format"] = raw["format"]
    if "events" in raw:
        events = raw["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) and 0 < len(e) <= 60 for e in events):
            raise InputError(
                'must be a list of event prefixes such as ["decision", "health"]', where="events"
            )
        out["events"] = events
    if "name" in raw:
        if not isinstance(raw["name"], str) or len(raw["name"]) > 200:
            raise InputError("must be a short text", where="name")
        out["name"] = raw["name"]
    if "active" in raw:
        if not isinstance(raw["active"], bool):
            raise InputError("must be true or false", where="active")
        out["active"] = raw["active"]
    return out


def create_webhook(session: Session, raw: Mapping[str, Any], actor: str) -> tuple[Webhook, str]:
    """The new webhook and its secret (generated unless given)."""
    fields = _clean(raw, creating=True)
    fields.setdefault("secret", "whsec_" + secrets.token_urlsafe(32))
    webhook = Webhook(created_by=actor, **fields)
    session.add(webhook)
    session.flush()
    return webhook, fields["secret"]


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    return webhook


def update_webhook(session: Session, webhook_id: int, raw: Mapping[str, Any]) -> Webhook:
    webhook = get_webhook(session, webhook_id)
    for key, value in _clean(raw, creating=False).items():
        setattr(webhook, key, value)
    session.flush()
    return webhook


def delete_webhook(session: Session, webhook_id: int) -> None:
    """With its deliveries (also where the database does not cascade): none is attempted again."""
    webhook = get_webhook(session, webhook_id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.delete(webhook)
    session.flush()


def list_deliveries(
    session: Session, webhook_id: int | None = None, status: str | None = None, rollout_id: int | None = None,
    limit: int = 100,
) -> list[WebhookDelivery]:  # fmt: skip
    """Newest first."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise InputError(f"must be one of {', '.join(DELIVERY_STATUSES)}", where="status")
    query = sa.select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 1000)))
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if rollout_id is not None:
        query = query.where(WebhookDelivery.rollout_id == rollout_id)
    return list(session.scalars(query))


def failed_count(session: Session) -> int:
    """For the UI's warning badge."""
    return int(session.scalar(sa.select(sa.func.count()).where(WebhookDelivery.status == "failed")) or 0)


def reset_for_retry(session: Session, delivery_id: int) -> WebhookDelivery:
    """A failed delivery goes back to pending (the caller enqueues it after the commit)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} does not exist")
    if delivery.status == "delivered":
        raise InputError("this delivery already succeeded", where="delivery")
    delivery.status, delivery.enqueued_at = "pending", None
    session.flush()
    return delivery


def webhook_to_json(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "name": webhook.name,
        "url": webhook.url,
        "format": webhook.format,
        "events": list(webhook.events or []),
        "active": webhook.active,
        "secret_hint": webhook.secret[:6] + "…",
        "created_by": webhook.created_by,
        "created_at": webhook.created_at.isoformat() if webhook.created_at else None,
    }


def delivery_to_json(delivery: WebhookDelivery, with_payload: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "rollout_id": delivery.rollout_id,
        "decision_id": delivery.decision_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at.isoformat() if delivery.created_at else None,
        "last_attempt_at": delivery.last_attempt_at.isoformat() if delivery.last_attempt_at else None,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }
    if with_payload:
        out["payload"] = delivery.payload
    return out
