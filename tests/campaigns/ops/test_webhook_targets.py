"""Webhooks refuse loopback, private and link-local targets (SSRF) unless an admin allows them."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.ops import alerts
from campaigns.ops.webhook_targets import target_problem
from models import Webhook, WebhookDelivery

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.9.9.9:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.4/hook",
    "http://[::1]:9000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://localhost:5000/hook",
    "http://api.localhost/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_targets_are_refused_on_save(api: Any, url: str) -> None:
    response = api.post("/api/v1/webhooks", json={"url": url})
    assert response.status_code == 400, url
    assert response.json["where"] == "url"
    assert "WEBHOOK_ALLOW_PRIVATE" in response.json["error"]


def test_public_targets_are_accepted(api: Any) -> None:
    for url in ("https://93.184.215.14/hook", "https://hooks.example/in"):  # a name is checked at delivery
        assert api.post("/api/v1/webhooks", json={"url": url}).status_code == 201, url
    assert target_problem("https://[2606:4700::1111]/") is None


def test_a_host_name_resolving_to_a_private_address_is_refused_at_delivery(app: Flask) -> None:
    name = socket.gethostname()
    resolved = {i[4][0] for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    if not any(a.startswith(("127.", "10.", "192.168.", "172.")) or a == "::1" for a in resolved):
        pytest.skip(f"{name} resolves to public addresses here: {resolved}")
    assert target_problem(f"http://{name}/hook", resolve=False) is None  # no DNS when saving
    problem = target_problem(f"http://{name}/hook")
    assert problem is not None and "private" in problem


def test_delivery_to_a_private_target_fails_without_sending(app: Flask, session: Session) -> None:
    session.add(Webhook(url="http://169.254.169.254/latest", secret="s" * 20))  # stored before the check
    session.flush()
    [delivery] = alerts.queue_event(session, "health", {"event": "health"})
    session.commit()
    attempted = alerts.attempt(session, delivery.id, final=True)
    assert attempted.status == "failed" and attempted.response_code is None
    assert "refused target" in attempted.last_error


def test_the_admin_setting_allows_private_targets(app: Flask, api: Any, session: Session) -> None:
    runtime = app.extensions["mailramp"]
    runtime.settings = replace(runtime.settings, webhook_allow_private=True)
    assert api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:1/hook"}).status_code == 201
    assert target_problem("http://10.0.0.1/") is None
    assert session.query(WebhookDelivery).count() == 0
