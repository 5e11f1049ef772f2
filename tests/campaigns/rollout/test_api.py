"""The rollout API: roles (a viewer changes nothing), transitions, four eyes, kill, audit, errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.factories import add_matured_sends

PLAN = [
    {"name": "internal", "kind": "internal", "exposure_bp": 0},
    {"name": "5%", "kind": "percent", "exposure_bp": 500},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000},
]
REASON = {"reason": "because"}


def _create(client: Any, **settings: Any) -> dict[str, Any]:
    settings.setdefault("plan", "manual")  # gate-less stages: chosen explicitly
    response = client.post("/api/v1/rollouts", json={"name": "spring", "stages": PLAN, **settings})
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json
    return body


def test_viewer_cannot_change_anything(make_api_client: Any) -> None:
    marketer = make_api_client("marketer")
    viewer = make_api_client("viewer")
    rollout_id = _create(marketer, holdout_bp=0)["id"]  # no holdout: a draft's contact is control
    assert viewer.get(f"/api/v1/rollouts/{rollout_id}").status_code == 200
    assert viewer.get("/api/v1/rollouts").status_code == 200
    assert viewer.get(f"/api/v1/rollouts/{rollout_id}/audit").status_code == 200
    assert viewer.get(f"/api/v1/rollouts/{rollout_id}/shadow").json == {"stages": []}
    assert viewer.get(f"/api/v1/rollouts/{rollout_id}/approvals").json == {"approvals": []}
    assert viewer.get(f"/api/v1/rollouts/{rollout_id}/arms/1").json["arm"] == "control"
    base = f"/api/v1/rollouts/{rollout_id}"
    attempts = [
        ("post", "/api/v1/rollouts", {"name": "x"}),
        ("patch", base, {"name": "y", **REASON}),
        *[
            ("post", f"{base}/{action}", REASON)
            for action in ("start", "advance", "pause", "resume", "rollback", "kill", "unkill", "rerandomize")
        ],
        ("post", f"{base}/model", {"model_version_id": 1, **REASON}),
        ("post", f"{base}/model/switch-back", REASON),
        ("post", f"{base}/approvals", REASON),
        ("post", "/api/v1/approvals/1/approve", REASON),
        ("post", "/api/v1/approvals/1/reject", REASON),
    ]
    for method, path, body in attempts:
        response = getattr(viewer, method)(path, json=body)
        assert response.status_code == 403, (method, path, response.json)
    after = viewer.get(f"{base}/audit").json["audit"]
    assert [row["action"] for row in after] == ["create"]


def test_marketer_ramps_and_four_eyes_apply_beyond_the_threshold(
    make_api_client: Any, session: Session
) -> None:
    marketer = make_api_client("marketer", "mia@example.com")
    approver = make_api_client("approver", "ada@example.com")
    rollout = _create(marketer, approval_from_bp=None)
    base = f"/api/v1/rollouts/{rollout['id']}"
    assert approver.patch(base, json={"approval_from_bp": 1000, **REASON}).status_code == 200
    assert marketer.patch(base, json={"approval_from_bp": None, **REASON}).status_code == 403
    assert marketer.post(f"{base}/start", json=REASON).json["state"] == "ramping"
    add_matured_sends(session, rollout["id"])
    assert marketer.post(f"{base}/advance", json=REASON).json["stage_index"] == 1
    add_matured_sends(session, rollout["id"])
    asked = marketer.post(f"{base}/advance", json={"reason": "5% is clean"})
    assert asked.status_code == 202
    approval = asked.json["approval"]
    assert (approval["requested_by"], approval["target_stage"], approval["status"]) == (
        "mia@example.com",
        2,
        "pending",
    )
    status = marketer.get(base).json
    assert status["stage_index"] == 1 and status["pending_approvals"][0]["id"] == approval["id"]
    assert marketer.post(f"/api/v1/approvals/{approval['id']}/approve", json=REASON).status_code == 403
    done = approver.post(f"/api/v1/approvals/{approval['id']}/approve", json={"reason": "numbers fine"})
    assert done.status_code == 200, done.json
    assert done.json["audit"]["actor"] == "ada@example.com" and done.json["audit"]["to_stage"] == 2
    assert marketer.get(base).json["exposure_bp"] == 5000


def test_approver_cannot_approve_own_request(make_api_client: Any, session: Session) -> None:
    approver = make_api_client("approver", "ada@example.com")
    rollout = _create(approver, approval_from_bp=0)
    base = f"/api/v1/rollouts/{rollout['id']}"
    assert approver.post(f"{base}/start", json=REASON).status_code == 200  # internal: 0% exposed
    add_matured_sends(session, rollout["id"])
    approval = approver.post(f"{base}/advance", json=REASON).json["approval"]
    response = approver.post(f"/api/v1/approvals/{approval['id']}/approve", json=REASON)
    assert response.status_code == 409 and "four eyes" in response.json["error"]


def test_kill_switch_over_the_api(api: Any, make_api_client: Any, session: Session) -> None:
    marketer = make_api_client("marketer")
    rollout = _create(api, holdout_bp=0)  # no holdout: a killed rollout's contact is control
    base = f"/api/v1/rollouts/{rollout['id']}"
    api.post(f"{base}/start", json=REASON)
    add_matured_sends(session, rollout["id"])
    assert api.post(f"{base}/advance", json=REASON).status_code == 200
    killed = marketer.post(f"{base}/kill", json={"reason": "complaints spiking"})
    assert killed.status_code == 200 and killed.json["killed"] is True and killed.json["exposure_bp"] == 0
    arm = api.get(f"{base}/arms/12345").json
    assert arm["arm"] == "control"
    assert api.post(f"{base}/advance", json=REASON).status_code == 409
    assert marketer.post(f"{base}/unkill", json=REASON).status_code == 403
    assert api.post(f"{base}/unkill", json=REASON).json["killed"] is False
    audit = api.get(f"{base}/audit?limit=2").json["audit"]
    assert [row["action"] for row in audit] == ["unkill", "kill"]
    assert audit[1]["reason"] == "complaints spiking"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "x", "stages": [{"kind": "percent", "exposure_bp": 12_000}]}, "stages[0].exposure_bp"),
        ({"name": "x", "targeting": {"rules": [{"attribute": "a", "op": "??"}]}}, "targeting.rules[0].op"),
        ({"name": "x", "holdout_bp": -1}, "holdout_bp"),
        ({"name": "x", "freeze_windows": [{"start": "soon", "end": "later"}]}, "freeze_windows[0].start"),
        ({"stages": PLAN}, "name"),
    ],
)
def test_bad_input_says_where(api: Any, body: dict[str, Any], where: str) -> None:
    response = api.post("/api/v1/rollouts", json=body)
    assert response.status_code == 400 and response.json["where"] == where


def test_invalid_transition_is_409_and_reason_is_required(api: Any) -> None:
    base = f"/api/v1/rollouts/{_create(api)['id']}"
    response = api.post(f"{base}/resume", json=REASON)
    assert response.status_code == 409 and "cannot resume a rollout that is draft" in response.json["error"]
    response = api.post(f"{base}/start", json={})
    assert response.status_code == 400 and response.json["where"] == "reason"
    assert api.get("/api/v1/rollouts/987654").status_code == 404


def test_openapi_lists_the_rollout_routes(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "post" in paths["/rollouts/{rollout_id}/kill"]
    assert "post" in paths["/approvals/{approval_id}/approve"]


def test_a_segment_is_excluded_by_hand_in_every_state_completed_included(
    make_api_client: Any, session: Session
) -> None:
    from models import Segment, Webhook, WebhookDelivery

    france = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
    session.add_all([france, Webhook(url="http://127.0.0.1:9/hook", secret="s3cret", format="json")])
    session.commit()
    marketer = make_api_client("marketer", "mia@example.com")
    rollout = _create(marketer, report_segments=[france.id])
    base = f"/api/v1/rollouts/{rollout['id']}"
    assert marketer.get(base).json["report_segments"] == [
        {"id": france.id, "name": "France", "excluded": False}
    ]
    marketer.post(f"{base}/start", json=REASON)
    for _ in range(2):  # internal, 5%: each with matured evidence
        add_matured_sends(session, rollout["id"])
        assert marketer.post(f"{base}/advance", json=REASON).status_code == 200
    add_matured_sends(session, rollout["id"])
    # a few sends cannot show the harm that matters: completing is "without evidence", for an approver
    refused = marketer.post(f"{base}/advance", json=REASON)
    assert refused.status_code == 409 and "completed without evidence" in refused.json["error"]
    approver = make_api_client("approver", "abe@example.com")
    done = approver.post(f"{base}/advance", json={**REASON, "override_gates": True})
    assert done.status_code == 200, done.json
    assert marketer.get(base).json["state"] == "completed"
    assert marketer.get(base).json["completed_without_evidence"] is True
    # the PATCH a user tries first (409 before): now an audited exclusion
    patched = marketer.patch(base, json={"targeting": {"exclude_segments": [france.id]}, "reason": "harmed"})
    assert patched.status_code == 200, patched.json
    assert patched.json["report_segments"][0]["excluded"] is True
    assert patched.json["targeting"]["exclude_segments"] == [france.id]
    # other settings of a completed rollout still cannot change
    assert marketer.patch(base, json={"name": "renamed", **REASON}).status_code == 409
    again = marketer.post(f"{base}/segments/{france.id}/exclude", json=REASON)
    assert again.status_code == 409 and "already" in again.json["error"]
    undone = marketer.post(f"{base}/segments/{france.id}/include", json={"reason": "fixed the feed"})
    assert undone.status_code == 200 and undone.json["report_segments"][0]["excluded"] is False
    assert marketer.post(f"{base}/segments/999999/exclude", json=REASON).status_code == 404
    audit = marketer.get(f"{base}/audit?limit=2").json["audit"]
    assert [(row["action"], row["reason"]) for row in audit] == [
        ("include_segment", "fixed the feed"),
        ("exclude_segment", "harmed"),
    ]
    assert audit[1]["from_state"] == audit[1]["to_state"] == "completed"
    session.expire_all()
    events = [d.event for d in session.query(WebhookDelivery).order_by(WebhookDelivery.id)]
    assert events[-2:] == ["decision.exclude_segment", "decision.include_segment"]
    decisions = marketer.get(f"{base}/decisions?outcome=exclude_segment").json
    assert decisions["decisions"][0]["reasons"] == ["harmed"]


def test_report_segments_and_manual_plans_are_in_the_openapi_document(make_api_client: Any) -> None:
    spec = make_api_client("viewer").get("/api/v1/openapi.json").json
    body = spec["paths"]["/rollouts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "report_segments" in body["properties"] and body["properties"]["plan"]["enum"] == [
        "staged",
        "manual",
    ]
    assert "/rollouts/{rollout_id}/segments/{segment_id}/exclude" in spec["paths"]


def test_a_gateless_plan_needs_the_manual_choice(make_api_client: Any) -> None:
    marketer = make_api_client("marketer")
    one = marketer.post(
        "/api/v1/rollouts", json={"name": "x", "stages": [{"kind": "percent", "exposure_bp": 2000}]}
    )
    assert one.status_code == 400 and one.json["where"] == "plan" and "manual" in one.json["error"]
    default = marketer.post("/api/v1/rollouts", json={"name": "y"}).json
    # sized to the workspace's audience: exposure rises to 100%, every stage gated, a forecast in words
    exposures = [s["exposure_bp"] for s in default["stages"]]
    assert exposures == sorted(exposures) and exposures[-1] == 10_000 and len(exposures) >= 2
    assert all(s["gates"]["min_recipients_per_arm"] >= 200 for s in default["stages"])
    assert "this rollout can" in default["forecast"]["words"]
    assert default["holdout_bp"] == 500 and default["plan"] == "staged"
    manual = marketer.post(
        "/api/v1/rollouts",
        json={"name": "z", "plan": "manual", "stages": [{"kind": "percent", "exposure_bp": 2000}]},
    )
    assert manual.status_code == 201 and manual.json["manual_plan"] is True


def test_the_workspace_default_plan_is_edited_by_an_admin_and_used_by_new_rollouts(
    make_api_client: Any,
) -> None:
    admin, marketer = make_api_client("admin"), make_api_client("marketer")
    plan = {"stages": [{"kind": "percent", "exposure_bp": bp, "gates": {"min_recipients_per_arm": 500}}
                       for bp in (200, 1000, 10_000)], "holdout_bp": 1000}  # fmt: skip
    assert marketer.put("/api/v1/settings/default-plan", json=plan).status_code == 403
    bad = admin.put(
        "/api/v1/settings/default-plan", json={"stages": [{"kind": "percent", "exposure_bp": 100}]}
    )
    assert bad.status_code == 400 and "staged" in bad.json["error"]
    assert admin.put("/api/v1/settings/default-plan", json=plan).status_code == 200
    assert marketer.get("/api/v1/settings/default-plan").json["holdout_bp"] == 1000
    created = marketer.post("/api/v1/rollouts", json={"name": "autumn"}).json
    assert [s["exposure_bp"] for s in created["stages"]] == [200, 1000, 10_000] and created[
        "holdout_bp"
    ] == 1000
