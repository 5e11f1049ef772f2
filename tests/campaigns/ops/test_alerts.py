"""Webhooks against a real local HTTP server: signature, formats, retries through rq, failures kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns.ops import alerts
from campaigns.ops.queues import all_queues
from models import Decision, Rollout, Webhook, WebhookDelivery

SECRET = "whsec-test-1234"


@dataclass
class Receiver:
    """Answers with the next status of `statuses` (the last one forever) and keeps every request."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture()
def receiver(allow_private_webhooks: Flask) -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _decision(session: Session, fmt: str, url: str, outcome: str = "rollback") -> tuple[Decision, Webhook]:
    hook = Webhook(url=url, secret=SECRET, format=fmt)
    rollout = Rollout(name="AI picks", salt="s", state="rolled_back")
    session.add_all([hook, rollout])
    session.flush()
    decision = Decision(
        rollout_id=rollout.id,
        outcome=outcome,
        stage_index=3,
        reasons=["unsubscribe_rate is significantly worse"],
        evidence={"health": ["guardrail:unsubscribe_rate"]},
        applied=True,
    )
    session.add(decision)
    session.flush()
    alerts.queue_decision(session, rollout, decision, base_url="http://mailramp.test")
    session.commit()
    return decision, hook


def _work(app: Flask) -> None:
    rt = app.extensions["mailramp"]
    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)


def test_signed_json_delivery(app: Flask, session: Session, receiver: Receiver) -> None:
    decision, _ = _decision(session, "json", receiver.url)
    ids = alerts.enqueue_for_decision(app.extensions["mailramp"], decision.id)
    assert len(ids) == 2  # decision.rollback and health.guardrail
    _work(app)
    events = []
    for headers, body in receiver.requests:
        assert headers["X-Mailramp-Signature"] == alerts.sign(
            SECRET, int(headers["X-Mailramp-Timestamp"]), body
        )
        assert alerts.verify_signature(
            SECRET, headers["X-Mailramp-Timestamp"], body, headers["X-Mailramp-Signature"]
        )
        assert not alerts.verify_signature(
            SECRET, headers["X-Mailramp-Timestamp"], body + b" ", headers["X-Mailramp-Signature"]
        )
        payload = json.loads(body)
        events.append(payload["event"])
        assert payload["decision"]["reasons"] == ["unsubscribe_rate is significantly worse"]
        assert payload["url"] == f"http://mailramp.test/rollouts/{decision.rollout_id}"
    assert sorted(events) == ["decision.rollback", "health.guardrail"]
    session.expire_all()
    rows = session.query(WebhookDelivery).all()
    assert {(r.status, r.attempts, r.response_code) for r in rows} == {("delivered", 1, 200)}


def test_slack_format(app: Flask, session: Session, receiver: Receiver) -> None:
    decision, _ = _decision(session, "slack", receiver.url, outcome="rollback")
    alerts.enqueue_for_decision(app.extensions["mailramp"], decision.id)
    _work(app)
    bodies = [json.loads(body) for _, body in receiver.requests]
    main = next(b for b in bodies if "decision.rollback" in b["text"])
    assert main["text"].startswith(":rotating_light: *decision.rollback* for rollout *AI picks*")
    assert main["blocks"][1]["text"]["text"] == "• unsubscribe_rate is significantly worse"


def test_pagerduty_events_v2_format(app: Flask, session: Session, receiver: Receiver) -> None:
    """A rollback triggers one critical incident per rollout (routing key: the webhook's secret); a
    health problem joins that incident as a warning; an advance resolves it."""
    decision, hook = _decision(session, "pagerduty", receiver.url, outcome="rollback")
    alerts.enqueue_for_decision(app.extensions["mailramp"], decision.id)
    _work(app)
    bodies = {json.loads(body)["payload"]["class"]: json.loads(body) for _, body in receiver.requests}
    trigger = bodies["decision.rollback"]
    assert trigger["routing_key"] == SECRET and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == f"mailramp-rollout-{decision.rollout_id}"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "mailramp"
    assert "rollout AI picks" in trigger["payload"]["summary"]
    assert trigger["payload"]["custom_details"]["reasons"] == ["unsubscribe_rate is significantly worse"]
    assert trigger["links"] == [
        {"href": f"http://mailramp.test/rollouts/{decision.rollout_id}", "text": "Open the rollout"}
    ]
    assert bodies["health.guardrail"]["payload"]["severity"] == "warning"
    assert bodies["health.guardrail"]["dedup_key"] == trigger["dedup_key"]

    rollout = session.get(Rollout, decision.rollout_id)
    advance = Decision(rollout_id=decision.rollout_id, outcome="advance", stage_index=3, applied=True)
    session.add(advance)
    session.flush()
    alerts.queue_decision(session, rollout, advance, base_url="http://mailramp.test")  # type: ignore[arg-type]
    session.commit()
    alerts.enqueue_for_decision(app.extensions["mailramp"], advance.id)
    _work(app)
    resolved = json.loads(receiver.requests[-1][1])
    assert (resolved["event_action"], resolved["dedup_key"]) == ("resolve", trigger["dedup_key"])
    assert session.get(Webhook, hook.id).format == "pagerduty"  # type: ignore[union-attr]


def test_retried_with_backoff_until_delivered(app: Flask, session: Session, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 200]
    hook = Webhook(url=receiver.url, secret=SECRET)
    session.add(hook)
    session.flush()
    [delivery] = alerts.queue_event(session, "health.srm", {"event": "health.srm"})
    session.commit()
    alerts.enqueue(app.extensions["mailramp"], [delivery.id], backoff=(0, 0, 0))
    _work(app)
    session.expire_all()
    row = session.get(WebhookDelivery, delivery.id)
    assert row is not None and (row.status, row.attempts, row.response_code) == ("delivered", 3, 200)
    assert len(receiver.requests) == 3


def test_failure_is_kept_after_the_last_attempt(app: Flask, session: Session, receiver: Receiver) -> None:
    receiver.statuses = [500]
    session.add(Webhook(url=receiver.url, secret=SECRET))
    session.add(Webhook(url="http://127.0.0.1:1/closed", secret=SECRET))  # nothing listens there
    session.flush()
    deliveries = alerts.queue_event(session, "decision.pause", {"event": "decision.pause"})
    session.commit()
    alerts.enqueue(app.extensions["mailramp"], [d.id for d in deliveries], backoff=(0,))
    _work(app)
    session.expire_all()
    http_error, refused = (session.get(WebhookDelivery, d.id) for d in deliveries)
    assert http_error is not None and refused is not None
    assert (http_error.status, http_error.attempts, http_error.response_code) == ("failed", 2, 500)
    assert http_error.last_error.startswith("HTTP 500")
    assert (refused.status, refused.attempts, refused.response_code) == ("failed", 2, None)
    assert "Connection refused" in refused.last_error or "Errno" in refused.last_error


def test_event_filters_and_inactive_hooks(session: Session) -> None:
    session.add_all(
        [
            Webhook(url="http://x/1", secret=SECRET, events=["decision.rollback", "health"]),
            Webhook(url="http://x/2", secret=SECRET, events=["decision"]),
            Webhook(url="http://x/3", secret=SECRET, active=False),
        ]
    )
    session.flush()
    assert [d.webhook_id for d in alerts.queue_event(session, "decision.hold", {})] == [2]
    assert len(alerts.queue_event(session, "decision.rollback", {})) == 2
    assert len(alerts.queue_event(session, "health.stale", {})) == 1


def test_old_timestamps_are_refused() -> None:
    body = b'{"event":"decision.hold"}'
    signature = alerts.sign(SECRET, 1_000, body)
    assert alerts.verify_signature(SECRET, "1000", body, signature, now=1_100)
    assert not alerts.verify_signature(SECRET, "1000", body, signature, now=2_000)
    assert not alerts.verify_signature("other", "1000", body, signature, now=1_100)
