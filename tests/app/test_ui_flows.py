"""The flows pages: a viewer sees and changes nothing, CSRF as every form, the editor's rows (add,
remove, move) and the API's own schema putting every error at its field, ready-made flows, state
changes and the journeys."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from app.auth import create_user
from app.extensions import db
from app.ui.flow_form import apply_op, definition_from_form, rows_from_definition, rows_from_form, validate
from campaigns.flows import library
from campaigns.flows.triggers import enter
from models import Flow, FlowEntry, Role, utcnow
from tests.factories import add_contacts, add_template

PASSWORD = "correct horse battery staple"


@pytest.fixture()
def template_id(app: Flask) -> int:
    with app.test_request_context():
        for role in Role:
            create_user(f"{role.value}@example.com", PASSWORD, role)
        db().commit()
        return int(add_template(db()).id)


def login(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD})
    assert answer.status_code == 302
    return client


def posted(template_id: int, **extra: str) -> MultiDict[str, str]:
    """The editor's form for: confirmed -> send -> wait 2 days -> branch opened -> exit."""
    fields = [
        ("name", "Welcome"), ("trigger_kind", "contact_confirmed"),
        ("step_key", "0"), ("step-0-type", "send"), ("step-0-id", "hello"),
        ("step-0-template_id", str(template_id)), ("step-0-from_email", "shop@example.com"),
        ("step_key", "1"), ("step-1-type", "wait"), ("step-1-id", "later"), ("step-1-days", "2"),
        ("step_key", "2"), ("step-2-type", "branch"), ("step-2-id", "check"), ("step-2-condition", "opened"),
        ("step-2-then", "done"),
        ("step_key", "3"), ("step-3-type", "exit"), ("step-3-id", "done"), ("step-3-reason", "opened"),
        ("exit_events", "purchase"), ("re_entry_rule", "after_days"), ("re_entry_days", "30"),
    ]  # fmt: skip
    form = MultiDict(fields)
    for key, value in extra.items():
        form.setlist(key, [value])
    return form


def test_the_form_round_trips_through_the_api_schema(template_id: int) -> None:
    state = rows_from_form(posted(template_id))
    definition, errors = validate(state)
    assert errors == {} and definition is not None
    stored = definition.model_dump(mode="json")
    assert stored["steps"][1] == {
        "id": "later",
        "type": "wait",
        "days": 2,
        "hours": 0,
        "minutes": 0,
        "until_local_time": None,
    }
    assert stored["exit_conditions"] == [{"event": "purchase"}] and stored["re_entry"] == {
        "rule": "after_days",
        "days": 30,
    }
    again = rows_from_definition(stored)
    assert definition_from_form(again)["steps"] == definition_from_form(state)["steps"]
    for key in library.READY:  # every ready-made flow round-trips through the editor unchanged
        raw = library.definition(key, dict.fromkeys(library.TEMPLATES, 7), "shop@example.com")
        canonical = validate(rows_from_definition(raw))[0]
        assert canonical is not None
        assert canonical.model_dump(mode="json") == type(canonical).model_validate(raw).model_dump(
            mode="json"
        )


def test_rows_are_added_moved_and_removed_without_saving(template_id: int) -> None:
    state = rows_from_form(posted(template_id))
    apply_op(state, "add:wait")
    assert [r["id"] for r in state["steps"]] == ["hello", "later", "check", "done", "wait-1"]
    apply_op(state, "up:4")
    assert [r["id"] for r in state["steps"]] == ["hello", "later", "check", "wait-1", "done"]
    apply_op(state, "down:0")
    apply_op(state, "up:0")  # back again
    apply_op(state, "up:0")  # the first cannot go higher
    apply_op(state, "remove:1")
    apply_op(state, "remove:99")  # nothing to remove
    assert [r["id"] for r in state["steps"]] == ["hello", "check", "wait-1", "done"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"step-1-days": "-1"}, "step-1-days", "greater than or equal to 0"),
        ({"step-1-days": "two"}, "step-1-days", "valid integer"),
        ({"step-1-days": ""}, "step-1-days", "a wait needs"),
        ({"step-0-from_email": "nobody"}, "step-0-from_email", "not an email address"),
        ({"step-0-template_id": ""}, "step-0-template_id", "integer"),
        ({"step-2-then": "hello"}, "step-2-then", "only jump forward"),
        ({"step-3-id": "Bad Id"}, "step-3-id", "pattern"),
        ({"step-1-id": "hello"}, "step-1-id", "used by an earlier step"),
        ({"re_entry_days": ""}, "re_entry_days", "days is required"),
        ({"trigger_kind": "inactivity", "trigger_days": "0"}, "trigger_days", "greater than or equal to 1"),
        ({"trigger_kind": "event", "trigger_name": "bad name!"}, "trigger_name", "pattern"),
        ({"exit_events": "a b!"}, "exit_events", "pattern"),
        ({"step-2-condition": "segment", "step-2-segment_rules": "{"}, "step-2-segment_rules", "JSON"),
    ],
)
def test_every_error_shows_at_its_field(
    app: Flask, template_id: int, change: dict[str, str], field: str, message: str
) -> None:
    page = login(app, "marketer").post("/flows/new", data=posted(template_id, **change))
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert f'id="f-{field}"' in html
    found = re.search(rf'<span class="error-text" id="{re.escape(field)}-error">([^<]*)</span>', html)
    assert found and message in found.group(1).replace("&#39;", "'"), (
        field,
        re.findall(r'error-text" id="([^"]+)"', html),
    )
    assert f'aria-describedby="{field}-error"' in html
    with app.app_context():
        assert db().scalar(sa.select(sa.func.count()).select_from(Flow)) == 0


def test_engine_errors_land_at_their_field_too(app: Flask, template_id: int) -> None:
    page = login(app, "marketer").post(
        "/flows/new", data=posted(template_id, **{"step-0-template_id": "999"})
    )
    assert page.status_code == 400
    assert 'id="step-0-template_id-error">step &#39;hello&#39;: template 999 does not exist' in page.get_data(
        as_text=True
    )


def test_a_marketer_makes_edits_and_runs_a_flow(app: Flask, template_id: int) -> None:
    client = login(app, "marketer")
    editor = client.post("/flows/new", data=posted(template_id, op="add:send"))
    assert editor.status_code == 200 and "Step 5: Send an email" in editor.get_data(as_text=True)
    made = client.post("/flows/new", data=posted(template_id))
    assert made.status_code == 302
    with app.app_context():
        flow = db().scalar(sa.select(Flow))
        assert flow is not None and flow.state == "draft" and flow.definition["steps"][1]["days"] == 2
        flow_id = flow.id
    page = client.get(f"/flows/{flow_id}").get_data(as_text=True)
    assert "Wait 2 days" in page and "If they opened an email of this flow since entering: go to done" in page
    edited = client.post(f"/flows/{flow_id}/edit", data=posted(template_id, **{"step-1-days": "3"}))
    assert edited.status_code == 302
    assert client.post(f"/flows/{flow_id}/act/activate").status_code == 302
    with app.app_context():
        flow = db().get(Flow, flow_id)
        assert flow is not None and (flow.version, flow.state) == (2, "active")
        [contact] = add_contacts(db(), 1)
        assert enter(db(), flow, contact, "t", {}, utcnow()) is not None
        db().commit()
    listed = client.get("/flows").get_data(as_text=True)
    assert "Welcome" in listed and "active" in listed
    journeys = client.get(f"/flows/{flow_id}/entries?state=active").get_data(as_text=True)
    assert "person0@example.com" in journeys and ">hello<" in journeys
    assert client.post(f"/flows/{flow_id}/act/archive").status_code == 302
    with app.app_context():
        assert db().scalar(sa.select(FlowEntry.exit_reason)) == "flow archived"
    assert client.get(f"/flows/{flow_id}/edit").status_code == 409
    assert client.post(f"/flows/{flow_id}/act/explode").status_code == 404


def test_a_viewer_sees_every_page_and_changes_nothing(app: Flask, template_id: int) -> None:
    marketer = login(app, "marketer")
    marketer.post(
        "/flows/from-template", data={"template": "abandoned_cart", "from_email": "shop@example.com"}
    )
    with app.app_context():
        flow_id = db().scalar(sa.select(Flow.id))
    viewer = login(app, "viewer")
    for path in ("/flows", f"/flows/{flow_id}", f"/flows/{flow_id}/entries"):
        page = viewer.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert "flow-activate" not in html and "Use this flow" not in html and "New flow" not in html
    assert viewer.get("/flows/new").status_code == 403
    assert viewer.get(f"/flows/{flow_id}/edit").status_code == 403
    for path in (
        "/flows/new",
        f"/flows/{flow_id}/edit",
        f"/flows/{flow_id}/act/activate",
        "/flows/from-template",
    ):
        assert (
            viewer.post(path, data=posted(template_id, template="welcome", from_email="a@b.co")).status_code
            == 403
        )
    with app.app_context():
        flow = db().get(Flow, flow_id)
        assert flow is not None and (flow.state, flow.version) == ("draft", 1)
        assert db().scalar(sa.select(sa.func.count()).select_from(Flow)) == 1
    assert "Flows" in viewer.get("/").get_data(as_text=True)  # in the navigation


def test_forms_need_the_csrf_token(app: Flask, template_id: int) -> None:
    client = login(app, "marketer")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post("/flows/new", data=posted(template_id)).status_code == 400
        assert (
            client.post(
                "/flows/from-template", data={"template": "welcome", "from_email": "a@b.co"}
            ).status_code
            == 400
        )
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_a_ready_made_flow_from_the_ui_and_its_errors(app: Flask, template_id: int) -> None:
    client = login(app, "marketer")
    bad = client.post(
        "/flows/from-template", data={"template": "welcome", "from_email": "nope"}, follow_redirects=True
    )
    assert "from_email: not an email address" in bad.get_data(as_text=True)
    made = client.post("/flows/from-template", data={"template": "welcome", "from_email": "shop@example.com"})
    assert made.status_code == 302 and made.headers["Location"].endswith("/edit")
    editor = client.get(made.headers["Location"]).get_data(as_text=True)
    assert editor.count('name="step_key"') == 5 and "Flow: welcome 2" in editor


def test_hostile_input_is_refused_at_its_field(app: Flask, template_id: int) -> None:
    client = login(app, "marketer")
    long_name = client.post("/flows/new", data=posted(template_id, name="x" * 201))
    assert long_name.status_code == 400 and 'id="name-error"' in long_name.get_data(as_text=True)
    nul = client.post("/flows/new", data=posted(template_id, **{"step-3-reason": "a\x00b"}))
    assert nul.status_code == 400 and 'id="step-3-reason-error">must not contain NUL' in nul.get_data(
        as_text=True
    )
    too_long = client.post(
        "/flows/from-template", data={"template": "welcome", "from_email": "a@example.com", "name": "y" * 300}
    )
    assert too_long.status_code == 302  # back to the list, with the error flashed
    script = client.post("/flows/new", data=posted(template_id, **{"step-3-id": "<script>"}))
    assert 'value="&lt;script&gt;"' in script.get_data(as_text=True)  # escaped, refused at its field
    assert 'id="step-3-id-error"' in script.get_data(as_text=True)
    with app.app_context():
        assert db().scalar(sa.select(sa.func.count()).select_from(Flow)) == 0


def test_steps_in_words() -> None:
    from app.ui.flow_steps import describe_step, describe_trigger

    assert (
        describe_trigger({"kind": "segment_joined", "segment_id": 4}, {4: "VIPs"})
        == "When a contact joins segment 'VIPs'"
    )
    assert describe_trigger(
        {"kind": "date_attribute", "attribute": "birthday", "offset_days": -3, "yearly": True}
    ) == ("3 days before the date in attribute 'birthday', every year")
    wait = {"type": "wait", "days": 1, "hours": 2, "until_local_time": "09:30"}
    assert describe_step(wait, {}) == "Wait 1 day, 2 hours, then until 09:30 in the contact's time zone"
    assert describe_step({"type": "send", "template_id": 9, "from_email": "a@b.co"}, {}) == (
        "Send 'template 9 (missing)' from a@b.co"
    )
    branch = {"type": "branch", "condition": {"segment_rules": {}}, "then": "x"}
    assert (
        describe_step(branch, {})
        == "If the contact matches the segment rule: go to x, otherwise the next step"
    )
