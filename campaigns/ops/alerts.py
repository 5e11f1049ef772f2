"""Webhooks for decisions and health problems: signed, retried with backoff, every attempt visible.

Events: ``decision.<outcome>`` for every decision (a hold identical to the previous decision of the
rollout is not sent again, so a five-minute cron does not flood a channel), and ``health.<problem>``
(``srm``, ``stale``, ``cap``, ``guardrail``, ``config``) when an evaluation finds one. A webhook
receives the events whose names start with one of its `events` prefixes (all when empty).

Payloads: ``json`` (generic: event, rollout, decision with reasons, its one-sentence summary and the key
evidence), ``slack`` (``text`` plus ``blocks``, the summary first) or ``pagerduty`` (a PagerDuty
Events API v2 event: set the webhook's URL to the Events API's enqueue endpoint and its secret to the
service's integration key, which becomes the ``routing_key``). Each request carries::

    X-Mailramp-Event: decision.rollback
    X-Mailramp-Delivery: 42
    X-Mailramp-Timestamp: 1718000000
    X-Mailramp-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret>

Receivers recompute the HMAC over the raw body and compare in constant time (`verify_signature`),
and reject old timestamps to stop replays. Deliveries are rows (`WebhookDelivery`) created in the
evaluation's transaction and sent by an rq job after the commit; a failure is recorded on the row
(attempts, response code, error) and raised so rq retries it with backoff (`BACKOFF_SECONDS`); after
the last attempt the row is ``failed``, which the API and UI list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Decision, Rollout, Webhook, WebhookDelivery

BACKOFF_SECONDS: tuple[int, ...] = (10, 60, 300, 1800, 3600)  # waits before retries 1..5
TIMEOUT_SECONDS = 10.0
FORMATS = ("json", "slack", "pagerduty")
USER_AGENT = "mailramp-webhooks/1"
_EMOJI = {"advance": ":arrow_up:", "hold": ":pause_button:", "rollback": ":rotating_light:", "pause": ":warning:"}  # fmt: skip


class DeliveryFailed(RuntimeError):
    """Raised inside the rq job so that rq retries the delivery."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, max_age: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver does: constant-time comparison, and timestamps older than `max_age` refused."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > max_age:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def decision_payload(event: str, rollout: Rollout, decision: Decision, base_url: str = "") -> dict[str, Any]:
    """The generic JSON payload."""
    evidence = decision.evidence or {}
    primary = evidence.get("primary") or {}
    return {
        "event": event,
        "rollout": {
            "id": rollout.id,
            "name": rollout.name,
            "state": rollout.state,
            "stage_index": rollout.stage_index,
        },
        "decision": {
            "id": decision.id,
            "outcome": decision.outcome,
            "applied": decision.applied,
            "stage_index": decision.stage_index,
            "at": decision.at.isoformat() if decision.at else None,
            "reasons": list(decision.reasons or []),
            "summary": evidence.get("summary"),
            "application": evidence.get("application"),
        },
        "health": list(evidence.get("health") or []),
        "primary": {k: primary.get(k) for k in ("metric", "lift", "lift_low", "lift_high", "better", "worse")}
        if primary
        else None,
        "srm": {k: (evidence.get("srm") or {}).get(k) for k in ("p_value", "mismatch", "observed")}
        if evidence.get("srm")
        else None,
        "url": f"{base_url.rstrip('/')}/rollouts/{rollout.id}" if base_url else None,
    }


def slack_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (also accepted by Mattermost and Rocket.Chat)."""
    decision, rollout = payload["decision"], payload["rollout"]
    title = (
        f"{_EMOJI.get(decision['outcome'], '')} *{payload['event']}* for rollout *{rollout['name']}* "
        f"(#{rollout['id']}, stage {decision['stage_index']}): {decision['outcome']}"
        + ("" if decision["applied"] else " (not applied)")
    ).strip()
    reasons = "\n".join([*filter(None, [decision.get("summary")]), *(f"• {r}" for r in decision["reasons"])])
    reasons = reasons or "• (no reason given)"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": reasons}},
    ]
    if payload.get("url"):
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{payload['url']}|Open the rollout>"}],
            }
        )
    return {"text": f"{title}\n{reasons}", "blocks": blocks}


# PagerDuty: one incident per rollout (its dedup key); a rollback, a pause or a health problem
# triggers it, an advance resolves it; holds and tests are informational triggers (leave them out
# with the webhook's event filter, e.g. ["decision.rollback", "decision.pause", "health."]).
_PD_SEVERITY = {"rollback": "critical", "pause": "error", "hold": "info", "advance": "info"}


def pagerduty_payload(payload: dict[str, Any], routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event (``trigger`` or ``resolve``) for a decision or health event."""
    decision, rollout, event = payload["decision"], payload["rollout"], str(payload["event"])
    outcome = str(decision["outcome"])
    severity = "warning" if event.startswith("health.") else _PD_SEVERITY.get(outcome, "info")
    action = "resolve" if event == "decision.advance" else "trigger"
    dedup = f"mailramp-rollout-{rollout['id']}" if rollout.get("id") is not None else f"mailramp-{event}"
    summary = (
        f"mailramp {event}: rollout {rollout['name']} (#{rollout['id']}, stage {decision['stage_index']}) "
        f"{outcome}" + ("" if decision["applied"] else " (not applied)")
    )
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup,
        "payload": {
            "summary": summary[:1024],
            "source": "mailramp",
            "severity": severity,
            "component": "rollout",
            "group": str(rollout.get("name") or ""),
            "class": event,
            "timestamp": decision.get("at") or datetime.now(UTC).isoformat(),
            "custom_details": {
                "reasons": decision["reasons"],
                "health": payload.get("health") or [],
                "primary": payload.get("primary"),
                "srm": payload.get("srm"),
            },
        },
    }
    if payload.get("url"):
        body["links"] = [{"href": payload["url"], "text": "Open the rollout"}]
    return body


def formatted(webhook: Webhook, payload: dict[str, Any]) -> dict[str, Any]:
    """The generic payload in the webhook's format."""
    if webhook.format == "slack":
        return slack_payload(payload)
    if webhook.format == "pagerduty":
        return pagerduty_payload(payload, webhook.secret)
    return payload


def _wants(webhook: Webhook, event: str) -> bool:
    prefixes = [str(p) for p in (webhook.events or [])]
    return not prefixes or any(event == p or event.startswith(p.rstrip(".") + ".") for p in prefixes)


def queue_event(session: Session, event: str, payload: dict[str, Any], rollout_id: int | None = None,
                decision_id: int | None = None) -> list[WebhookDelivery]:  # fmt: skip
    """One pending delivery per active webhook that wants the event (sent after the caller commits)."""
    out = []
    for webhook in session.scalars(sa.select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)):
        if not _wants(webhook, event):
            continue
        body = formatted(webhook, payload)
        delivery = WebhookDelivery(
            webhook_id=webhook.id, event=event, payload=body, rollout_id=rollout_id, decision_id=decision_id
        )
        session.add(delivery)
        out.append(delivery)
    session.flush()
    return out


def queue_decision(session: Session, rollout: Rollout, decision: Decision, repeated: bool = False,
                   base_url: str = "") -> list[WebhookDelivery]:  # fmt: skip
    """Deliveries for a decision and its health problems; a repeated identical decision sends nothing."""
    if repeated:
        return []
    if not base_url:
        base_url = _base_url()
    out = []
    event = f"decision.{decision.outcome}"
    out += queue_event(
        session, event, decision_payload(event, rollout, decision, base_url), rollout.id, decision.id
    )
    for problem in sorted({str(h).split(":")[0] for h in (decision.evidence or {}).get("health", [])}):
        event = f"health.{problem}"
        out += queue_event(
            session, event, decision_payload(event, rollout, decision, base_url), rollout.id, decision.id
        )
    return out


def queue_test(session: Session, webhook: Webhook, actor: str) -> WebhookDelivery:
    """A ``webhook.test`` delivery to one webhook, whatever its event filter."""
    payload: dict[str, Any] = {
        "event": "webhook.test",
        "rollout": {"id": None, "name": "(test)", "state": "", "stage_index": 0},
        "decision": {"id": None, "outcome": "hold", "applied": False, "stage_index": 0, "at": None,
                     "reasons": [f"test event sent by {actor}"], "application": None},
        "health": [],
        "url": None,
    }  # fmt: skip
    body = formatted(webhook, payload)
    delivery = WebhookDelivery(webhook_id=webhook.id, event="webhook.test", payload=body)
    session.add(delivery)
    session.flush()
    return delivery


def _base_url() -> str:
    from campaigns import runtime

    try:
        return runtime.current().settings.base_url
    except RuntimeError:
        return ""


# -- sending -----------------------------------------------------------------------------------------


def post(
    url: str,
    secret: str,
    event: str,
    delivery_id: int,
    payload: dict[str, Any],
    timeout: float = TIMEOUT_SECONDS,
) -> int:
    """POST the signed payload; returns the HTTP status (raises on connection errors and non-2xx)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Mailramp-Event": event,
        "X-Mailramp-Delivery": str(delivery_id),
        "X-Mailramp-Timestamp": str(ts),
        "X-Mailramp-Signature": sign(secret, ts, body),
    }
    from campaigns.ops.webhook_http import post_pinned
    from campaigns.ops.webhook_targets import TargetRefused

    try:
        return post_pinned(url, body, headers, timeout)
    except TargetRefused as exc:
        raise ValueError(f"refused target: {exc}") from exc


GONE = "the webhook was deleted or deactivated"


def attempt(session: Session, delivery_id: int, final: bool, now: datetime | None = None) -> WebhookDelivery:
    """One delivery attempt, recorded on the row. `final`: no retry follows a failure."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise LookupError(f"webhook delivery {delivery_id} does not exist")
    if delivery.status == "delivered":
        return delivery
    webhook = session.get(Webhook, delivery.webhook_id)
    delivery.attempts += 1
    delivery.last_attempt_at = now or datetime.now(UTC)
    if webhook is None or not webhook.active:
        delivery.status, delivery.last_error = "failed", GONE
        return delivery
    try:
        code = post(webhook.url, webhook.secret, delivery.event, delivery.id, delivery.payload)
        delivery.response_code, delivery.status, delivery.last_error = code, "delivered", ""
        delivery.delivered_at = delivery.last_attempt_at
    except urllib.error.HTTPError as exc:
        delivery.response_code = exc.code
        delivery.last_error = f"HTTP {exc.code} {exc.reason}"
        delivery.status = "failed" if final else "retrying"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        delivery.response_code = None
        delivery.last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        delivery.status = "failed" if final else "retrying"
    return delivery


def deliver(delivery_id: int) -> str:
    """The rq job: one attempt; raises `DeliveryFailed` so rq retries while retries are left."""
    from rq import get_current_job

    from campaigns import runtime

    job = get_current_job()
    final = job is None or not job.retries_left
    with runtime.current().session() as session:
        if session.get(WebhookDelivery, delivery_id) is None:
            return "gone"  # its webhook was deleted with its deliveries: nothing to retry
        delivery = attempt(session, delivery_id, final=final)
        status, error = delivery.status, delivery.last_error
    if error == GONE:
        return status  # the webhook was deleted or deactivated: retrying cannot help
    if status in ("retrying", "failed") and not final:
        raise DeliveryFailed(f"webhook delivery {delivery_id}: {error}")
    return status


def enqueue(runtime: Any, delivery_ids: Sequence[int], backoff: Sequence[int] = BACKOFF_SECONDS) -> None:
    """Enqueue one delivery job per id (after the rows are committed), retried with `backoff`."""
    if not delivery_ids:
        return
    from rq import Retry

    from campaigns.ops import queues

    queue = queues.queue(runtime, queues.WEBHOOKS)
    retry = Retry(max=len(backoff), interval=list(backoff)) if backoff else None
    for delivery_id in delivery_ids:
        queue.enqueue(
            deliver,
            delivery_id,
            retry=retry,
            job_id=f"webhook-delivery-{delivery_id}",
            result_ttl=3600,
            failure_ttl=7 * 86400,
        )
    with runtime.session() as session:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(delivery_ids)))
            .values(enqueued_at=datetime.now(UTC))
        )


def enqueue_for_decision(
    runtime: Any, decision_id: int, backoff: Sequence[int] = BACKOFF_SECONDS
) -> list[int]:
    with runtime.session() as session:
        ids = list(
            session.scalars(
                sa.select(WebhookDelivery.id).where(
                    WebhookDelivery.decision_id == decision_id, WebhookDelivery.status == "pending"
                )
            )
        )
    enqueue(runtime, ids, backoff)
    return ids


def deliver_stuck(older_than_minutes: float = 10.0) -> list[int]:
    """Cron: enqueue pending deliveries that were never enqueued (the process died after the commit)."""
    from campaigns import runtime

    rt = runtime.current()
    cutoff = datetime.now(UTC) - timedelta(minutes=older_than_minutes)
    with rt.session() as session:
        ids = list(
            session.scalars(
                sa.select(WebhookDelivery.id)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(
                    Webhook.active.is_(True),
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.enqueued_at.is_(None),
                    WebhookDelivery.created_at < cutoff,
                )
            )
        )
    enqueue(rt, ids)
    return ids
