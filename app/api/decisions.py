"""Decisions over the API: evaluate a rollout now, read decisions with their evidence and the per-arm
metrics behind them; webhooks (admin) and their deliveries, failed ones included."""

from __future__ import annotations

from flask import Response, jsonify, request

from app.api.errors import json_body
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns import alerts, arm_report, webhooks
from campaigns.errors import InputError, NotFound
from campaigns.evaluation import decision_to_json, evaluate, list_decisions
from models import Decision, Role, Rollout

TAG = "decisions"
_DECISION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "rollout_id": {"type": "integer"},
        "outcome": {"enum": ["hold", "advance", "rollback", "pause"]},
        "applied": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "evidence": {"type": "object"},
    },
}
_WEBHOOK_BODY = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "secret": {"type": "string", "description": "16-200 characters; generated when absent"},
        "format": {"enum": list(alerts.FORMATS)},
        "events": {"type": "array", "items": {"type": "string"}, "description": "event prefixes; empty: all"},
        "name": {"type": "string"},
        "active": {"type": "boolean"},
    },
}


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError("must be a whole number", where=name) from None


@route(
    "/rollouts/<int:rollout_id>/evaluate",
    "POST",
    role=Role.marketer,
    summary="Evaluate a rollout now: decide, store, apply through the state machine, alert",
    response=_DECISION,
    tag=TAG,
)
def rollout_evaluate(rollout_id: int) -> Response:
    session = db()
    decision = evaluate(session, rollout_id, actor=actor())
    session.commit()
    alerts.enqueue_for_decision(get_runtime(), decision.id)
    return jsonify(decision_to_json(decision))


@route(
    "/rollouts/<int:rollout_id>/decisions",
    "GET",
    role=Role.viewer,
    summary="Decisions of a rollout, newest first, with their evidence",
    query={"outcome": "hold | advance | rollback | pause", "limit": "at most this many (50)"},
    tag=TAG,
)
def rollout_decisions(rollout_id: int) -> Response:
    rows = list_decisions(db(), rollout_id, request.args.get("outcome") or None, _int_arg("limit", 50))
    return jsonify(decisions=[decision_to_json(d) for d in rows])


@route(
    "/decisions/<int:decision_id>",
    "GET",
    role=Role.viewer,
    summary="One decision",
    response=_DECISION,
    tag=TAG,
)
def decision_get(decision_id: int) -> Response:
    decision = db().get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"decision {decision_id} does not exist")
    return jsonify(decision_to_json(decision))


@route(
    "/rollouts/<int:rollout_id>/metrics",
    "GET",
    role=Role.viewer,
    summary="Per-arm metrics by stage (and segment) from the incremental aggregates",
    query={"segment": "a segment label; empty: whole arms"},
    tag=TAG,
)
def rollout_metrics(rollout_id: int) -> Response:
    session = db()
    if session.get(Rollout, rollout_id) is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    report = arm_report.rollout_metrics(session, rollout_id, request.args.get("segment", ""))
    return jsonify({**report, "segments": arm_report.segments_of(session, rollout_id)})


@route("/webhooks", "GET", role=Role.admin, summary="List webhooks", tag=TAG)
def webhooks_list() -> Response:
    from sqlalchemy import select

    from models import Webhook

    rows = db().scalars(select(Webhook).order_by(Webhook.id))
    return jsonify(
        webhooks=[webhooks.webhook_to_json(w) for w in rows], failed_deliveries=webhooks.failed_count(db())
    )


@route(
    "/webhooks",
    "POST",
    role=Role.admin,
    summary="Create a webhook (the secret is shown once)",
    body=_WEBHOOK_BODY,
    tag=TAG,
)
def webhooks_create() -> tuple[Response, int]:
    session = db()
    webhook, secret = webhooks.create_webhook(session, json_body(), actor())
    session.commit()
    return jsonify({**webhooks.webhook_to_json(webhook), "secret": secret}), 201


@route("/webhooks/<int:webhook_id>", "GET", role=Role.admin, summary="One webhook", tag=TAG)
def webhooks_get(webhook_id: int) -> Response:
    return jsonify(webhooks.webhook_to_json(webhooks.get_webhook(db(), webhook_id)))


@route(
    "/webhooks/<int:webhook_id>",
    "PATCH",
    role=Role.admin,
    summary="Change a webhook",
    body=_WEBHOOK_BODY,
    tag=TAG,
)
def webhooks_update(webhook_id: int) -> Response:
    session = db()
    webhook = webhooks.update_webhook(session, webhook_id, json_body())
    session.commit()
    return jsonify(webhooks.webhook_to_json(webhook))


@route(
    "/webhooks/<int:webhook_id>",
    "DELETE",
    role=Role.admin,
    summary="Delete a webhook and its deliveries",
    tag=TAG,
)
def webhooks_delete(webhook_id: int) -> tuple[str, int]:
    session = db()
    webhooks.delete_webhook(session, webhook_id)
    session.commit()
    return "", 204


@route(
    "/webhooks/<int:webhook_id>/test",
    "POST",
    role=Role.admin,
    summary="Send a test event (webhook.test)",
    tag=TAG,
)
def webhooks_test(webhook_id: int) -> Response:
    session = db()
    webhook = webhooks.get_webhook(session, webhook_id)
    delivery = alerts.queue_test(session, webhook, actor())
    session.commit()
    alerts.enqueue(get_runtime(), [delivery.id])
    return jsonify(webhooks.delivery_to_json(delivery, with_payload=True))


@route(
    "/webhook-deliveries",
    "GET",
    role=Role.viewer,
    summary="Webhook deliveries, newest first (status=failed: the ones to look at)",
    query={"status": "pending | retrying | delivered | failed", "webhook_id": "only this webhook",
           "rollout_id": "only this rollout", "limit": "at most this many (100)"},
    tag=TAG,
)  # fmt: skip
def deliveries_list() -> Response:
    webhook_id = _int_arg("webhook_id", 0) or None
    rollout_id = _int_arg("rollout_id", 0) or None
    rows = webhooks.list_deliveries(
        db(), webhook_id, request.args.get("status") or None, rollout_id, _int_arg("limit", 100)
    )
    return jsonify(deliveries=[webhooks.delivery_to_json(d) for d in rows])


@route(
    "/webhook-deliveries/<int:delivery_id>/retry",
    "POST",
    role=Role.admin,
    summary="Send a failed delivery again",
    tag=TAG,
)
def deliveries_retry(delivery_id: int) -> Response:
    session = db()
    delivery = webhooks.reset_for_retry(session, delivery_id)
    session.commit()
    alerts.enqueue(get_runtime(), [delivery.id])
    return jsonify(webhooks.delivery_to_json(delivery))
