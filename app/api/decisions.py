"""Decisions over the API: evaluate a rollout now, read decisions with their evidence and the per-arm
metrics behind them; webhooks (admin) and their deliveries, failed ones included."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response, jsonify
from pydantic import Field

from app.api.responses import DeliveryList, DeliveryOut, WebhookCreated, WebhookList, WebhookOut
from app.api.responses_rollouts import DecisionList, DecisionOut, RolloutMetrics
from app.api.schema import BIGINT_MAX, ApiModel, QueryModel
from app.api.spec import route
from app.auth import actor
from app.extensions import db, get_runtime
from campaigns.decisions.evaluation import decision_to_json, evaluate, list_decisions
from campaigns.errors import NotFound
from campaigns.ops import alerts, webhooks
from campaigns.reports import arm_report
from models import Decision, Role, Rollout

TAG = "decisions"


class WebhookPatch(ApiModel):
    url: str | None = Field(
        None, max_length=2000, description="http(s); private addresses need an admin setting"
    )
    secret: str | None = Field(None, min_length=16, max_length=200, description="generated when absent")
    format: Literal[alerts.FORMATS] | None = None  # type: ignore[valid-type]
    events: list[Annotated[str, Field(min_length=1, max_length=60)]] | None = Field(
        None, description="event prefixes; empty: all"
    )
    name: str | None = Field(None, max_length=200)
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class WebhookIn(WebhookPatch):
    url: str = Field(max_length=2000, description="http(s); private addresses need an admin setting")


class DecisionQuery(QueryModel):
    outcome: Literal["hold", "advance", "rollback", "pause", "exclude_segment", "include_segment"] | None = (
        None
    )
    limit: int = Field(50, ge=1, le=1000)


class DeliveryQuery(QueryModel):
    status: Literal[webhooks.DELIVERY_STATUSES] | None = None  # type: ignore[valid-type]
    webhook_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="only this webhook")
    rollout_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="only this rollout")
    limit: int = Field(100, ge=1, le=1000)


class SegmentQuery(QueryModel):
    segment: str = Field("", max_length=200, description="a segment label; empty: whole arms")


@route(
    "/rollouts/<int:rollout_id>/evaluate",
    "POST",
    role=Role.marketer,
    summary="Evaluate a rollout now: decide, store, apply through the state machine, alert",
    response=DecisionOut,
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
    query=DecisionQuery,
    tag=TAG,
    response=DecisionList,
)
def rollout_decisions(rollout_id: int, query: DecisionQuery) -> Response:
    rows = list_decisions(db(), rollout_id, query.outcome, query.limit)
    return jsonify(decisions=[decision_to_json(d) for d in rows])


@route(
    "/decisions/<int:decision_id>",
    "GET",
    role=Role.viewer,
    summary="One decision",
    response=DecisionOut,
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
    query=SegmentQuery,
    tag=TAG,
    response=RolloutMetrics,
)
def rollout_metrics(rollout_id: int, query: SegmentQuery) -> Response:
    session = db()
    if session.get(Rollout, rollout_id) is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    report = arm_report.rollout_metrics(session, rollout_id, query.segment)
    return jsonify({**report, "segments": arm_report.segments_of(session, rollout_id)})


@route("/webhooks", "GET", role=Role.admin, summary="List webhooks", tag=TAG, response=WebhookList)
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
    body=WebhookIn,
    tag=TAG,
    status=201,
    response=WebhookCreated,
)
def webhooks_create(body: WebhookIn) -> tuple[Response, int]:
    session = db()
    webhook, secret = webhooks.create_webhook(session, body.changes(), actor())
    session.commit()
    return jsonify({**webhooks.webhook_to_json(webhook), "secret": secret}), 201


@route(
    "/webhooks/<int:webhook_id>", "GET", role=Role.admin, summary="One webhook", tag=TAG, response=WebhookOut
)
def webhooks_get(webhook_id: int) -> Response:
    return jsonify(webhooks.webhook_to_json(webhooks.get_webhook(db(), webhook_id)))


@route(
    "/webhooks/<int:webhook_id>",
    "PATCH",
    role=Role.admin,
    summary="Change a webhook",
    body=WebhookPatch,
    tag=TAG,
    response=WebhookOut,
)
def webhooks_update(webhook_id: int, body: WebhookPatch) -> Response:
    session = db()
    webhook = webhooks.update_webhook(session, webhook_id, body.changes())
    session.commit()
    return jsonify(webhooks.webhook_to_json(webhook))


@route(
    "/webhooks/<int:webhook_id>",
    "DELETE",
    role=Role.admin,
    summary="Delete a webhook and its deliveries",
    tag=TAG,
    status=204,
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
    response=DeliveryOut,
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
    query=DeliveryQuery,
    tag=TAG,
    response=DeliveryList,
)
def deliveries_list(query: DeliveryQuery) -> Response:
    rows = webhooks.list_deliveries(db(), query.webhook_id, query.status, query.rollout_id, query.limit)
    return jsonify(deliveries=[webhooks.delivery_to_json(d) for d in rows])


@route(
    "/webhook-deliveries/<int:delivery_id>/retry",
    "POST",
    role=Role.admin,
    summary="Send a failed delivery again",
    tag=TAG,
    response=DeliveryOut,
)
def deliveries_retry(delivery_id: int) -> Response:
    session = db()
    delivery = webhooks.reset_for_retry(session, delivery_id)
    session.commit()
    alerts.enqueue(get_runtime(), [delivery.id])
    return jsonify(webhooks.delivery_to_json(delivery))
