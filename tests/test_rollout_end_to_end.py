"""The README's campaign-with-AI call through the API, on real parts (rq worker, SMTP server,
database): the rollout gets a plan sized to its audience capped at the campaign's 20%, a wave goes out
at the first stage (10%), the evaluation neither advances nor completes on recipients mailed seconds
ago, and a second wave sent at once still goes at the first stage's exposure."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from rq import SimpleWorker

from campaigns.ops.queues import all_queues
from campaigns.runtime import Runtime
from models import Decision, Send, Wave
from tests.conftest import SmtpSink
from tests.test_end_to_end import contacts_csv


def test_readme_ai_campaign_ramps_from_the_first_stage_on_matured_evidence_only(
    app: Any, make_api_client: Any, smtp_sink: SmtpSink
) -> None:
    rt: Runtime = app.extensions["mailramp"]
    api = make_api_client("marketer", "mia@example.com")
    approver = make_api_client("approver", "ada@example.com")
    run = api.post(
        "/api/v1/contacts/import?filename=contacts.csv", data=contacts_csv(1334), content_type="text/csv"
    ).get_json()
    assert run["rows_imported"] == 1334, run
    rules = {"all": [{"field": "country", "op": "eq", "value": "United Kingdom"}]}
    segment = api.post("/api/v1/segments", json={"name": "UK", "rules": rules}).get_json()
    template = api.post(
        "/api/v1/templates",
        json={
            "name": "Weekly picks",
            "subject": "Picks for you",
            "layout_html": "<html><body>{{ content }}</body></html>",
            "control_html": '<p><a href="https://shop.example/best">best sellers</a></p>',
            "ai_html": "{% for r in recommendations %}<p>{{ r.name }}</p>{% endfor %}",
        },
    ).get_json()

    # the README's call, verbatim but for the ids
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Weekly", "template_id": template["id"], "segment_id": segment["id"],
              "from_email": "shop@example.com", "ai": {"exposure_percent": 20, "holdout_percent": 5}},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    rollout_id = created.get_json()["rollout_id"]
    rollout = api.get(f"/api/v1/rollouts/{rollout_id}").get_json()
    assert (rollout["state"], rollout["stage_index"], rollout["plan"], rollout["manual_plan"]) == (
        "ramping", 0, "staged", False,
    )  # fmt: skip
    # sized to a small audience: the largest first stage below the cap, then the cap (20%)
    assert [s["exposure_bp"] for s in rollout["stages"]] == [1000, 2000]
    assert all(s["gates"]["min_recipients_per_arm"] >= 200 for s in rollout["stages"])
    assert rollout["holdout_bp"] == 500 and rollout["exposure_bp"] == 1000
    assert "this rollout can" in rollout["forecast"]["words"]

    def wave(limit: int) -> int:
        planned = api.post(f"/api/v1/campaigns/{created.get_json()['id']}/waves", json={"limit": limit})
        assert planned.status_code in (200, 201, 202), planned.get_json()
        SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
        return int(planned.get_json()["wave_id"])

    first = wave(600)
    after = api.get(f"/api/v1/rollouts/{rollout_id}").get_json()
    assert (after["state"], after["stage_index"]) == ("ramping", 0), after["state"]
    with rt.session() as session:
        decisions = session.scalars(sa.select(Decision).where(Decision.rollout_id == rollout_id)).all()
        assert decisions and all(d.outcome not in ("advance", "rollback") for d in decisions)
        assert "not enough matured data" in decisions[-1].reasons[0]
    maturation = after["maturation"]
    assert maturation["matured"] is False and maturation["window_hours"] == 72
    last_sent = datetime.fromisoformat(maturation["stage_last_sent_at"])
    assert (datetime.fromisoformat(maturation["stage_matures_at"]) - last_sent).total_seconds() == 72 * 3600

    second = wave(600)  # at once: still the first stage's exposure
    with rt.session() as session:
        for wave_id in (first, second):
            planned = session.get(Wave, wave_id)
            assert planned is not None and (planned.stage_index, planned.exposure_bp) == (0, 1000)
        arms = Counter(
            session.scalars(sa.select(Send.arm).where(Send.rollout_id == rollout_id, Send.stage_index == 0))
        )
        assert sum(arms.values()) == 1200
        assert arms["treatment"] <= 120 + 4 * 108**0.5  # 10% of 1,200 within four standard deviations
        # 5% holdout (60 expected) and 85% control (1,020), each within four standard deviations
        assert abs(arms["holdout"] - 60) <= 4 * (1200 * 0.05 * 0.95) ** 0.5
        assert abs(arms["control"] - 1020) <= 4 * (1200 * 0.85 * 0.15) ** 0.5
    assert api.get(f"/api/v1/rollouts/{rollout_id}").get_json()["state"] == "ramping"

    # advancing by hand without matured evidence: refused, then only an approver with a reason
    base = f"/api/v1/rollouts/{rollout_id}"
    refused = api.post(f"{base}/advance", json={"reason": "looks fine"})
    assert refused.status_code == 409 and "matured" in refused.get_json()["error"]
    assert api.post(f"{base}/advance", json={"reason": "go", "override_gates": True}).status_code == 403
    forced = approver.post(f"{base}/advance", json={"reason": "launch day", "override_gates": True})
    assert forced.status_code == 200, forced.get_json()
    audit = api.get(f"{base}/audit?limit=1").get_json()["audit"][0]
    assert audit["actor"] == "ada@example.com" and audit["evidence"]["snapshot"]["gates"]["overridden"]

    # the rollout metrics report deliveries as campaign results do (sent and not bounced)
    metrics = api.get(f"{base}/metrics").get_json()
    assert sum(row["delivered"] for row in metrics["arms"]) == 1200
