"""Alerts: webhooks (admins add and remove them) and every delivery, failures first in view, with a
retry. The rules live in `campaigns.webhooks` and `campaigns.alerts`, shared with the API."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, require_role
from app.extensions import db, get_runtime
from app.ui import ui
from app.ui.actions import perform
from campaigns import alerts, webhooks
from models import Role, Webhook


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
    def queue() -> int:
        delivery = alerts.queue_test(db(), webhooks.get_webhook(db(), webhook_id), actor())
        return int(delivery.id)

    response = perform(queue, success="Test event queued.", back=url_for("ui.webhooks_page"))
    _enqueue_pending()
    return response


@ui.route("/settings/webhooks/deliveries/<int:delivery_id>/retry", methods=["POST"])
@require_role(Role.admin)
def webhooks_retry(delivery_id: int) -> Response:
    response = perform(
        lambda: webhooks.reset_for_retry(db(), delivery_id),
        success="Delivery queued again.",
        back=url_for("ui.webhooks_page", status=request.args.get("status") or None),
    )
    _enqueue_pending()
    return response


def _enqueue_pending() -> None:
    """After the commit: hand every pending delivery to the workers."""
    pending = [d.id for d in webhooks.list_deliveries(db(), status="pending", limit=1000)]
    if pending:
        try:
            alerts.enqueue(get_runtime(), pending)
        except Exception as exc:  # Redis down: the periodic deliver_stuck job picks them up
            flash(f"queued in the database; the workers will pick it up ({exc})", "error")
