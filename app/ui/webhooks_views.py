"""Alerts: webhooks (admins add and remove them and see their URLs; other roles see only the host,
the URL being a credential) and every delivery, failures first in view, with a retry. The rules live in `campaigns.ops.webhooks` and `campaigns.ops.alerts`, shared with the API."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import flash, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.ops import alerts, webhooks
from models import Role, Webhook, WebhookDelivery


def shown_url(url: str) -> str:
    """What a non-admin sees of a webhook URL: its scheme and host. The rest (a Slack or PagerDuty
    path, a query token, a user:password) is a credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


@ui.route("/settings/webhooks")
@require_role(Role.viewer)
def webhooks_page() -> str:
    status = request.args.get("status") or None
    if status not in (None, *webhooks.DELIVERY_STATUSES):
        status = None
    return render_template(
        "ui/webhooks.html",
        hooks=db().scalars(sa.select(Webhook).order_by(Webhook.id)).all(),
        deliveries=webhooks.list_deliveries(db(), status=status, limit=200),
        failed=webhooks.failed_count(db()),
        status=status,
        statuses=webhooks.DELIVERY_STATUSES,
        formats=alerts.FORMATS,
        shown_url=shown_url,
    )


@ui.route("/settings/webhooks", methods=["POST"])
@require_role(Role.admin)
def webhooks_create() -> Response:
    form = request.form
    raw: dict[str, object] = {
        "url": form.get("url", ""),
        "format": form.get("format", "json"),
        "name": form.get("name", ""),
    }
    if form.get("secret"):
        raw["secret"] = form["secret"]
    events = [e.strip() for e in form.get("events", "").split(",") if e.strip()]
    if events:
        raw["events"] = events

    def create() -> str:
        _, secret = webhooks.create_webhook(db(), raw, actor())
        return secret

    return perform(
        create,
        success=lambda secret: f"Webhook added. Its signing secret (shown once): {secret}",
        back=url_for("ui.webhooks_page"),
    )


@ui.route("/settings/webhooks/<int:webhook_id>/delete", methods=["POST"])
@require_role(Role.admin)
def webhooks_delete(webhook_id: int) -> Response:
    return perform(
        lambda: webhooks.delete_webhook(db(), webhook_id),
        success="Webhook removed.",
        back=url_for("ui.webhooks_page"),
    )


@ui.route("/settings/webhooks/<int:webhook_id>/test", methods=["POST"])
@require_role(Role.admin)
def webhooks_test(webhook_id: int) -> Response:
    return _deliver_now(
        lambda: alerts.queue_test(db(), webhooks.get_webhook(db(), webhook_id), actor()),
        "Test event queued.",
        url_for("ui.webhooks_page"),
    )


@ui.route("/settings/webhooks/deliveries/<int:delivery_id>/retry", methods=["POST"])
@require_role(Role.admin)
def webhooks_retry(delivery_id: int) -> Response:
    return _deliver_now(
        lambda: webhooks.reset_for_retry(db(), delivery_id),
        "Delivery queued again.",
        url_for("ui.webhooks_page", status=request.args.get("status") or None),
    )


def _deliver_now(make: Callable[[], WebhookDelivery], done: str, back: str) -> Response:
    """Commit the pending delivery, then hand exactly that one to the workers."""
    queued: list[int] = []

    def committed(delivery: WebhookDelivery) -> str:  # perform calls this after its commit
        queued.append(int(delivery.id))
        return done

    response = perform(make, success=committed, back=back)
    if queued:
        try:
            alerts.enqueue(get_runtime(), queued)
        except Exception as exc:  # Redis down: the periodic deliver_stuck job picks it up
            flash(f"saved; the workers will pick it up when the queue is back ({exc})", "error")
    return response
