"""Webhooks page: admins add hooks; everyone sees deliveries, failures flagged; a failed one is retried."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.auth import create_user
from app.extensions import db
from models import Role, Webhook, WebhookDelivery

PASSWORD = "correct horse battery staple"


def login(app: Flask, client: FlaskClient, role: Role) -> FlaskClient:
    with app.test_request_context():
        create_user(f"{role.value}@example.com", PASSWORD, role)
        db().commit()
    client.post("/login", data={"email": f"{role.value}@example.com", "password": PASSWORD})
    return client


def test_admin_adds_a_webhook_and_retries_a_failed_delivery(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    admin = login(app, client, Role.admin)
    response = admin.post(
        "/settings/webhooks", data={"url": "https://hooks.example/in", "format": "slack", "name": "Team"}
    )
    assert response.status_code == 302
    hook = session.query(Webhook).one()
    assert (hook.format, hook.name) == ("slack", "Team")
    session.add(
        WebhookDelivery(
            webhook_id=hook.id,
            event="decision.rollback",
            status="failed",
            attempts=6,
            response_code=500,
            last_error="HTTP 500 from the receiver",
        )
    )
    session.commit()
    page = admin.get("/settings/webhooks").get_data(as_text=True)
    assert "1 webhook delivery failed after every retry" in page
    assert "HTTP 500 from the receiver" in page
    delivery = session.query(WebhookDelivery).one()
    assert admin.post(f"/settings/webhooks/deliveries/{delivery.id}/retry").status_code == 302
    session.expire_all()
    retried = session.get(WebhookDelivery, delivery.id)
    assert retried is not None and retried.status == "pending" and retried.enqueued_at is not None


def test_bad_webhook_url_is_refused_and_viewers_only_read(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    admin = login(app, client, Role.admin)
    response = admin.post(
        "/settings/webhooks", data={"url": "ftp://x", "format": "json"}, follow_redirects=True
    )
    assert "url: must be an http or https URL" in response.get_data(as_text=True)
    assert session.query(Webhook).count() == 0
    admin.post("/logout")
    viewer = login(app, client, Role.viewer)
    page = viewer.get("/settings/webhooks")
    assert page.status_code == 200 and "Add a webhook" not in page.get_data(as_text=True)
    assert viewer.post("/settings/webhooks", data={"url": "https://x.example"}).status_code == 403
