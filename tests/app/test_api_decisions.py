"""Decisions API and `mailramp rollout evaluate`: evaluate on demand, evidence, webhooks CRUD, deliveries."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from models import WebhookDelivery
from tests.campaigns.decisions.test_evaluation import build


def test_evaluate_on_demand_and_list_decisions(api: Any, session: Session) -> None:
    rollout = build(session)
    response = api.post(f"/api/v1/rollouts/{rollout.id}/evaluate")
    assert response.status_code == 200, response.json
    decision = response.json
    assert decision["outcome"] == "advance" and decision["applied"] is True
    assert decision["evidence"]["primary"]["metric"] == "conversion_rate"
    assert decision["evidence"]["actor"] == "admin@example.com"

    listed = api.get(f"/api/v1/rollouts/{rollout.id}/decisions?outcome=advance").json["decisions"]
    assert [d["id"] for d in listed] == [decision["id"]]
    assert api.get(f"/api/v1/decisions/{decision['id']}").json["reasons"] == decision["reasons"]
    assert api.get(f"/api/v1/rollouts/{rollout.id}/decisions?outcome=maybe").status_code == 400
    assert api.get("/api/v1/rollouts/999/decisions").status_code == 404
    assert api.post("/api/v1/rollouts/999/evaluate").status_code == 404


def test_metrics_report(api: Any, session: Session) -> None:
    rollout = build(session, converted=(30, 15))
    report = api.get(f"/api/v1/rollouts/{rollout.id}/metrics").json
    arms = {row["arm"]: row for row in report["arms"]}
    assert arms["treatment"]["sent"] == 300 and arms["treatment"]["conversion"] == 30
    assert arms["treatment"]["conversion_rate"] == 0.1 and arms["control"]["conversion_rate"] == 0.05
    assert arms["treatment"]["revenue_per_recipient"] == 2.0  # 30 x 20 / 300
    assert arms["treatment"]["render_p95_ms"] == 5.0
    assert [(r["stage_index"], r["arm"]) for r in report["stages"]] == [(0, "control"), (0, "treatment")]


def test_roles(make_api_client: Any, session: Session) -> None:
    rollout = build(session)
    viewer = make_api_client("viewer")
    assert viewer.post(f"/api/v1/rollouts/{rollout.id}/evaluate").status_code == 403
    assert viewer.get(f"/api/v1/rollouts/{rollout.id}/decisions").status_code == 200
    assert viewer.post("/api/v1/webhooks", json={"url": "https://hooks.example/x"}).status_code == 403


def test_webhooks_crud_and_deliveries(api: Any, session: Session) -> None:
    bad = api.post("/api/v1/webhooks", json={"url": "ftp://x"})
    assert bad.status_code == 400 and bad.json["where"] == "url"
    created = api.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example/hook", "format": "slack", "name": "ops"}
    )
    assert created.status_code == 201
    hook = created.json
    assert hook["secret"].startswith("whsec_") and hook["secret_hint"] == hook["secret"][:6] + "…"
    assert "secret" not in api.get(f"/api/v1/webhooks/{hook['id']}").json
    changed = api.patch(f"/api/v1/webhooks/{hook['id']}", json={"events": ["health"], "active": True})
    assert changed.json["events"] == ["health"]
    assert api.patch(f"/api/v1/webhooks/{hook['id']}", json={"format": "xml"}).json["where"] == "format"

    test = api.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert test.status_code == 200 and test.json["event"] == "webhook.test"
    assert test.json["payload"]["text"].startswith(":pause_button: *webhook.test*")
    session.get(WebhookDelivery, test.json["id"]).status = "failed"  # type: ignore[union-attr]
    session.commit()
    failed = api.get("/api/v1/webhook-deliveries?status=failed").json["deliveries"]
    assert [d["id"] for d in failed] == [test.json["id"]]
    assert api.get("/api/v1/webhooks").json["failed_deliveries"] == 1
    assert api.post(f"/api/v1/webhook-deliveries/{test.json['id']}/retry").json["status"] == "pending"
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404


def test_cli_evaluate(app: Flask, session: Session) -> None:
    rollout = build(session, unsubscribed=(30, 1))
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["rollout", "evaluate", str(rollout.id), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"rollout {rollout.id}: rollback at stage 0 (not applied)")
    session.refresh(rollout)
    assert rollout.state == "ramping"
    real = runner.invoke(args=["rollout", "evaluate", str(rollout.id)])
    assert real.exit_code == 0, real.output
    assert real.output.splitlines()[0] == f"rollout {rollout.id}: rollback at stage 0 (applied)"
    assert "  - unsubscribe_rate is significantly worse" in real.output
    session.refresh(rollout)
    assert rollout.state == "rolled_back"
    missing = runner.invoke(args=["rollout", "evaluate", "999"])
    assert missing.exit_code == 1 and "rollout 999 does not exist" in missing.output
