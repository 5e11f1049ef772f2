"""Webhooks refuse loopback, private and link-local targets (SSRF) unless an admin allows them."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    for url in (
        "https://93.184.215.14/hook",
        "https://hooks.example/in",
    ):  # no answer yet: checked at delivery
        assert api.post("/api/v1/webhooks", json={"url": url}).status_code == 201, url
    assert target_problem("https://[2606:4700::1111]/") is None


def test_a_host_name_resolving_to_a_private_address_is_refused(app: Flask) -> None:
    name = socket.gethostname()
    resolved = {i[4][0] for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    if not any(a.startswith(("127.", "10.", "192.168.", "172.")) or a == "::1" for a in resolved):
        pytest.skip(f"{name} resolves to public addresses here: {resolved}")
    for resolve in (False, True):  # when saving (a bounded lookup) and at delivery
        problem = target_problem(f"http://{name}/hook", resolve=resolve)
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


# --- what can be known when a webhook is saved ----------------------------------------------------

SPELLED = [
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f000001/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://127.0.1/hook",
    "http://017700000001/hook",
    "http://0/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://127.0.0.1.nip.io/hook",
    "http://app.10.0.0.5.nip.io/hook",
    "http://169-254-169-254.sslip.io/hook",
    "http://name.7f000001.nip.io/hook",
    "http://anything.localtest.me/hook",
    "http://LOCALHOST./hook",
]


@pytest.mark.parametrize("url", SPELLED)
def test_addresses_in_every_spelling_are_refused_on_save(api: Any, url: str) -> None:
    response = api.post("/api/v1/webhooks", json={"url": url})
    assert response.status_code == 400, url
    assert response.json["where"] == "url" and "WEBHOOK_ALLOW_PRIVATE" in response.json["error"]


def _answers(monkeypatch: pytest.MonkeyPatch, name: str, addresses: list[str]) -> list[str]:
    """`name` resolves to the next of `addresses` at each lookup (the last one forever)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = addresses.pop(0) if len(addresses) > 1 else addresses[0]
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_a_name_resolving_to_a_private_address_is_refused_on_save(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answers(monkeypatch, "internal.example", ["10.0.0.7"])
    response = api.post("/api/v1/webhooks", json={"url": "https://internal.example/hook"})
    assert response.status_code == 400 and "10.0.0.7" in response.json["error"]


def test_delivery_connects_to_the_address_it_checked(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name answers a public address to the check, then 127.0.0.1. The request
    must go to the checked address, never to the local service listening on 127.0.0.1."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        asked = _answers(monkeypatch, "rebind.example", ["198.51.100.7", "93.184.215.14", "127.0.0.1"])
        # 198.51.100.7 is documentation space (not public): the first answer is refused outright
        with pytest.raises(ValueError, match="refused target"):
            alerts.post(f"http://rebind.example:{port}/hook", "s" * 20, "health", 1, {}, timeout=1)
        with pytest.raises(OSError):  # the checked public address does not answer here
            alerts.post(f"http://rebind.example:{port}/hook", "s" * 20, "health", 1, {}, timeout=1)
        assert hits == []  # never the loopback answer of a second lookup
        assert asked == ["198.51.100.7", "93.184.215.14"]  # one lookup per delivery
    finally:
        server.shutdown()
        server.server_close()


def test_deliveries_of_a_deleted_or_deactivated_webhook_are_not_retried(
    app: Flask, api: Any, session: Session
) -> None:
    from rq import SimpleWorker

    from campaigns.ops.queues import all_queues

    rt = app.extensions["mailramp"]
    off = Webhook(url="https://93.184.215.14/off", secret="s" * 20, active=True)
    gone = Webhook(url="https://93.184.215.14/gone", secret="s" * 20)
    session.add_all([off, gone])
    session.flush()
    deliveries = alerts.queue_event(session, "health", {"event": "health"})
    session.commit()
    off.active = False
    session.commit()
    assert api.delete(f"/api/v1/webhooks/{gone.id}").status_code in (200, 204)
    alerts.enqueue(rt, [d.id for d in deliveries], backoff=(0, 0, 0))
    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    session.expire_all()
    remaining = session.query(WebhookDelivery).all()
    assert [(d.webhook_id, d.status, d.attempts) for d in remaining] == [(off.id, "failed", 1)]
