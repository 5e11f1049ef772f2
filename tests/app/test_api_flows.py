"""The flows API: roles, validation that names the step and field, versions, state changes, entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tests.conftest import ApiClient
from tests.factories import add_template


def welcome(template_id: int, **steps_extra: Any) -> dict[str, Any]:
    return {
        "trigger": {"kind": "contact_created"},
        "steps": [
            {"id": "hello", "type": "send", "template_id": template_id, "from_email": "shop@example.com"},
            {"id": "later", "type": "wait", "hours": 2, **steps_extra},
            {"id": "again", "type": "send", "template_id": template_id, "from_email": "shop@example.com"},
        ],
    }


def test_a_viewer_reads_but_cannot_create_or_change(
    session: Session, api: ApiClient, make_api_client: Any
) -> None:
    template_id = add_template(session).id
    made = api.post("/api/v1/flows", json={"name": "Welcome", "definition": welcome(template_id)})
    assert made.status_code == 201 and made.json["state"] == "draft" and made.json["version"] == 1
    viewer = make_api_client("viewer", email="viewer@example.com")
    assert viewer.get("/api/v1/flows").json["flows"][0]["name"] == "Welcome"
    assert viewer.get(f"/api/v1/flows/{made.json['id']}/entries").status_code == 200
    refused = viewer.post("/api/v1/flows", json={"name": "Mine", "definition": welcome(template_id)})
    assert refused.status_code == 403
    for action in ("activate", "pause", "archive"):
        assert viewer.post(f"/api/v1/flows/{made.json['id']}/{action}").status_code == 403
    assert viewer.patch(f"/api/v1/flows/{made.json['id']}", json={"name": "X"}).status_code == 403
    assert api.get("/api/v1/flows").json["flows"][0]["state"] == "draft"


def test_an_invalid_definition_is_refused_naming_the_step_and_field(session: Session, api: ApiClient) -> None:
    template_id = add_template(session).id
    bad_wait = api.post("/api/v1/flows", json={"name": "W", "definition": welcome(template_id, hours=-1)})
    assert bad_wait.status_code == 400
    assert bad_wait.json["where"] == "definition.steps.1.wait.hours"
    unknown_field = api.post(
        "/api/v1/flows", json={"name": "W", "definition": welcome(template_id, colour=1)}
    )
    assert (
        unknown_field.status_code == 400 and unknown_field.json["where"] == "definition.steps.1.wait.colour"
    )
    no_template = welcome(template_id)
    no_template["steps"][2]["template_id"] = 999_999
    missing = api.post("/api/v1/flows", json={"name": "W", "definition": no_template})
    assert missing.status_code == 400 and missing.json["where"] == "definition.steps.2.template_id"
    assert "again" in missing.json["error"]
    backwards = welcome(template_id)
    backwards["steps"].append(
        {"id": "check", "type": "branch", "condition": {"event": "opened"}, "then": "hello"}
    )
    loop = api.post("/api/v1/flows", json={"name": "W", "definition": backwards})
    assert (
        loop.status_code == 400 and "steps.3.then" in loop.json["error"] and "forward" in loop.json["error"]
    )
    bad_type = welcome(template_id)
    bad_type["steps"][0]["type"] = "teleport"
    assert (
        api.post("/api/v1/flows", json={"name": "W", "definition": bad_type})
        .json["where"]
        .startswith("definition.steps.0")
    )
    bad_rules = welcome(template_id)
    bad_rules["steps"].append(
        {
            "id": "vip",
            "type": "branch",
            "condition": {"segment_rules": {"field": "nope", "op": "eq", "value": 1}},
            "then": "again",
        }
    )
    bad_rules["steps"][2], bad_rules["steps"][3] = bad_rules["steps"][3], bad_rules["steps"][2]
    rules = api.post("/api/v1/flows", json={"name": "W", "definition": bad_rules})
    assert rules.status_code == 400 and rules.json["where"].startswith("definition.steps.2.condition")
    nul = api.post(
        "/api/v1/flows",
        json={
            "name": "W",
            "definition": {**welcome(template_id), "trigger": {"kind": "event", "name": "a\u0000b"}},
        },
    )
    assert nul.status_code == 400
    reentry = api.post(
        "/api/v1/flows",
        json={"name": "W", "definition": {**welcome(template_id), "re_entry": {"rule": "after_days"}}},
    )
    assert reentry.status_code == 400 and reentry.json["where"] == "definition.re_entry"
    assert api.get("/api/v1/flows").json["flows"] == []


def test_edits_make_versions_and_states_move_as_allowed(session: Session, api: ApiClient) -> None:
    template_id = add_template(session).id
    flow = api.post("/api/v1/flows", json={"name": "Welcome", "definition": welcome(template_id)}).json
    same = api.patch(f"/api/v1/flows/{flow['id']}", json={"definition": welcome(template_id)})
    assert same.status_code == 200 and same.json["version"] == 1  # nothing changed
    edited = api.patch(f"/api/v1/flows/{flow['id']}", json={"definition": welcome(template_id, hours=5)})
    assert edited.json["version"] == 2 and edited.json["definition"]["steps"][1]["hours"] == 5
    assert api.post(f"/api/v1/flows/{flow['id']}/pause").status_code == 409  # a draft is not running
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").json["state"] == "active"
    assert api.post(f"/api/v1/flows/{flow['id']}/pause").json["state"] == "paused"
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").json["state"] == "active"
    assert api.post(f"/api/v1/flows/{flow['id']}/archive").json["state"] == "archived"
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 409
    assert api.patch(f"/api/v1/flows/{flow['id']}", json={"name": "Y"}).status_code == 409
    assert api.get("/api/v1/flows/999999").status_code == 404
    other = api.post("/api/v1/flows", json={"name": "Welcome", "definition": welcome(template_id)})
    assert other.status_code == 409  # names are unique


def test_contact_events_name_what_is_wrong(session: Session, api: ApiClient) -> None:
    contact_id = api.post("/api/v1/contacts", json={"email": "c@example.com"}).json["id"]
    longest = {"name": "n" * 100, "email": "c@example.com", "key": "k" * 190, "properties": {"a": [1]}}
    answer = api.post("/api/v1/contact-events", json=longest).json
    assert answer == {"recorded": True, "contact_id": contact_id}
    assert api.post("/api/v1/contact-events", json={**longest, "key": "k" * 191}).json["where"] == "key"
    assert api.post("/api/v1/contact-events", json={"name": "browsed"}).json["where"] == "body"
    # properties are stored with every event and entry: bounded in size and depth, named in the answer
    big = {"name": "browsed", "email": "c@example.com", "properties": {"blob": "x" * 17_000}}
    answer = api.post("/api/v1/contact-events", json=big)
    assert answer.status_code == 400 and answer.json["where"] == "properties" and "16,384" in answer.json["error"]
    deep: dict[str, object] = {}
    for _ in range(9):
        deep = {"d": deep}
    nested = api.post("/api/v1/contact-events", json={**big, "properties": deep})
    assert nested.status_code == 400 and nested.json["where"] == "properties"
    unknown = api.post("/api/v1/contact-events", json={"name": "browsed", "email": "nobody@example.com"})
    assert unknown.status_code == 400 and unknown.json["where"] == "email"
    assert (
        api.post("/api/v1/contact-events", json={"name": "browsed", "contact_id": 12345}).status_code == 404
    )
    bad_name = api.post("/api/v1/contact-events", json={"name": "no spaces", "contact_id": 1})
    assert bad_name.status_code == 400 and bad_name.json["where"] == "name"
    naive = api.post(
        "/api/v1/contact-events",
        json={"name": "browsed", "contact_id": 1, "occurred_at": "2026-01-01T10:00:00"},
    )
    assert naive.status_code == 400
