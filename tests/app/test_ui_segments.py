"""The segment builder: form rows become the engine's rule tree, the live count answers, saving
validates and names the bad condition."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from app.auth import create_user
from app.extensions import db
from app.ui.segment_form import builder_state, rules_from_form
from campaigns.errors import InputError
from models import Contact, Role, Segment

PASSWORD = "correct horse battery staple"


def form(**fields: str) -> MultiDict[str, str]:
    return MultiDict(list(fields.items()))


def test_rows_become_rules() -> None:
    rules = rules_from_form(
        form(
            match="any",
            **{"kind-0": "field", "field-0": "country", "op-0": "in", "value-0": "France, Spain"},
            **{"kind-1": "field", "field-1": "attributes.age", "op-1": "ge", "value-1": "30"},
            **{"kind-2": "purchased", "value-2": "Kitchen", "days-2": "90"},
            **{"kind-3": "no_purchase_since", "days-3": "180"},
            **{"kind-4": "field", "field-4": ""},  # a blank row is ignored
        )
    )
    assert rules == {
        "any": [
            {"field": "country", "op": "in", "value": ["France", "Spain"]},
            {"field": "attributes.age", "op": "ge", "value": 30},
            {"purchased": {"category": "Kitchen", "within_days": 90}},
            {"no_purchase_since": {"days": 180}},
        ]
    }


def test_json_box_wins_and_bad_json_says_where() -> None:
    assert rules_from_form(form(rules_json='{"not": {"field": "consent", "op": "eq", "value": true}}')) == {
        "not": {"field": "consent", "op": "eq", "value": True}
    }
    with pytest.raises(InputError) as bad:
        rules_from_form(form(rules_json='{\n"all": [}'))
    assert bad.value.where == "rules (line 2)"


def test_builder_round_trip_and_nested_rules_fall_back_to_json() -> None:
    flat = {
        "all": [{"field": "attributes.vip", "op": "eq", "value": True}, {"purchased": {"category": "Toys"}}]
    }
    match, rows, text = builder_state(flat)
    assert (match, text) == ("all", "")
    assert [(r.kind, r.field, r.value) for r in rows] == [
        ("field", "attributes.vip", "true"),
        ("purchased", "", "Toys"),
    ]
    nested = {"all": [{"any": [{"field": "country", "op": "eq", "value": "France"}]}]}
    assert builder_state(nested)[2].startswith("{")


@pytest.fixture()
def marketer(app: Flask, client: FlaskClient) -> FlaskClient:
    with app.test_request_context():
        create_user("m@example.com", PASSWORD, Role.marketer)
        for i, country in enumerate(["France", "France", "Spain"]):
            db().add(Contact(email=f"c{i}@example.com", country=country, attributes={"age": 20 + 10 * i}))
        db().commit()
    client.post("/login", data={"email": "m@example.com", "password": PASSWORD})
    return client


def test_live_count_and_save(app: Flask, marketer: FlaskClient) -> None:
    rows: dict[str, Any] = {"kind-0": "field", "field-0": "country", "op-0": "eq", "value-0": "France"}
    assert marketer.post("/segments/count", data=rows).get_json() == {"count": 2, "sendable": 2}
    bad = marketer.post("/segments/count", data={**rows, "field-0": "shoe size"}).get_json()
    assert bad["where"].startswith("rules.all[0]")
    saved = marketer.post("/segments/new", data={"name": "French", "match": "all", **rows})
    assert saved.status_code == 302
    with app.app_context():
        segment = db().query(Segment).one()
        assert segment.rules == {"all": [{"field": "country", "op": "eq", "value": "France"}]}
    listing = marketer.get("/segments").get_data(as_text=True)  # not counted yet: the browser asks
    assert "French" in listing and f'data-count-url="/segments/{segment.id}/size"' in listing
    assert marketer.get(f"/segments/{segment.id}/size").get_json()["count"] == 2
    listing = marketer.get("/segments").get_data(as_text=True)  # counted: shown at once
    assert ">2</span>" in listing and "data-count-url" not in listing
    spain = {**rows, "value-0": "Spain"}
    assert (
        marketer.post(f"/segments/{segment.id}", data={"name": "French", "match": "all", **spain}).status_code
        == 302
    )
    assert marketer.get(f"/segments/{segment.id}/size").get_json()["count"] == 1  # new rules, counted again
    page = marketer.post("/segments/new", data={"name": "French", **rows})
    assert page.status_code == 400
    assert "there is already a segment called" in page.get_data(as_text=True)


def test_a_single_condition_opens_in_the_builder() -> None:
    match, rows, text = builder_state({"field": "attributes.beta", "value": True})
    assert (match, text) == ("all", "")
    assert [(r.field, r.op, r.value) for r in rows] == [("attributes.beta", "eq", "true")]
