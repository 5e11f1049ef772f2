"""Ready-made flows: each validates through the flow schema, is offered by the API, makes the
templates a workspace lacks (once, with an unsubscribe link), and runs: a tick sends its first email."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.flows import library
from campaigns.flows.definition import FlowDefinition, SendStep
from campaigns.flows.triggers import enter
from models import Flow, Template
from tests.campaigns.flows.helpers import start_clock, tick
from tests.conftest import ApiClient, SmtpSink

KEYS = list(library.READY)


@pytest.mark.parametrize("key", KEYS)
def test_each_ready_made_flow_is_a_valid_definition(key: str) -> None:
    ids = {t: n + 1 for n, t in enumerate(library.TEMPLATES)}
    definition = FlowDefinition.model_validate(library.definition(key, ids, "shop@example.com"))
    sends = [s for s in definition.steps if isinstance(s, SendStep)]
    assert sends and all(s.from_email == "shop@example.com" for s in sends)


def test_the_library_says_what_the_issue_asks() -> None:
    welcome = library.READY["welcome"].definition
    assert welcome["trigger"] == {"kind": "contact_confirmed"}
    assert len(library.READY["welcome"].templates()) == 3
    assert sum(s.get("days", 0) for s in welcome["steps"]) == 7  # three sends over a week
    cart = library.READY["abandoned_cart"].definition
    assert cart["trigger"]["name"] == "added_to_cart" and cart["exit_conditions"] == [{"event": "purchase"}]
    cross_sell = [s for s in library.READY["post_purchase"].definition["steps"] if s["type"] == "send"]
    assert (
        cross_sell[0]["ai_content"] is True
        and "recommendations" in library.TEMPLATES["cross-sell"][1]["ai_html"]
    )
    assert library.READY["win_back"].definition["trigger"]["kind"] == "inactivity"
    assert all("{{ unsubscribe_url }}" in fields["layout_html"] for _, fields in library.TEMPLATES.values())


def test_the_api_lists_them_and_makes_a_flow_from_one(
    session: Session, api: ApiClient, make_api_client: object
) -> None:
    viewer = make_api_client("viewer", email="viewer@example.com")  # type: ignore[operator]
    listed = viewer.get("/api/v1/flow-templates")
    assert listed.status_code == 200
    assert [t["key"] for t in listed.json["flow_templates"]] == KEYS
    assert listed.json["flow_templates"][0]["templates"] == [
        "Flow: welcome 1",
        "Flow: welcome 2",
        "Flow: welcome 3",
    ]
    refused = viewer.post("/api/v1/flows", json={"from_template": "welcome", "from_email": "a@example.com"})
    assert refused.status_code == 403

    made = api.post("/api/v1/flows", json={"from_template": "welcome", "from_email": "shop@example.com"})
    assert made.status_code == 201, made.json
    assert made.json["name"] == "Welcome series" and made.json["state"] == "draft"
    names = set(session.scalars(sa.select(Template.name)))
    assert {"Flow: welcome 1", "Flow: welcome 2", "Flow: welcome 3"} <= names
    again = api.post(
        "/api/v1/flows",
        json={"name": "Welcome (B)", "from_template": "welcome", "from_email": "shop@example.com"},
    )
    assert again.status_code == 201
    assert session.scalar(sa.select(sa.func.count()).select_from(Template)) == 3  # reused, not copied
    steps = again.json["definition"]["steps"]
    assert steps[0]["template_id"] == made.json["definition"]["steps"][0]["template_id"]
    assert api.post(f"/api/v1/flows/{made.json['id']}/activate").json["state"] == "active"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"from_template": "welcome", "from_email": "not an address"}, "from_email"),
        ({"from_template": "newsletter", "from_email": "shop@example.com"}, "from_template"),
        ({"from_template": "welcome"}, "body"),
        (
            {"name": "X", "from_template": "welcome", "from_email": "a@example.com", "definition": {}},
            "definition",
        ),
    ],
)
def test_bad_requests_say_what_and_where(api: ApiClient, body: dict[str, object], where: str) -> None:
    answer = api.post("/api/v1/flows", json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["where"].startswith(where), answer.json


@pytest.mark.parametrize("key", KEYS)
def test_each_ready_made_flow_runs_a_tick_sends_its_first_email(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink, key: str
) -> None:
    rt = app.extensions["mailramp"]
    made = api.post("/api/v1/flows", json={"from_template": key, "from_email": "shop@example.com"})
    assert api.post(f"/api/v1/flows/{made.json['id']}/activate").status_code == 200
    contact = api.post("/api/v1/contacts", json={"email": "someone@example.com", "timezone": "UTC"})
    assert contact.status_code == 201
    clock = start_clock()
    flow = session.get(Flow, made.json["id"])
    assert flow is not None
    assert enter(session, flow, contact.json["id"], f"test:{key}", {}, clock.now) is not None
    session.commit()
    for _ in range(4):  # through the waits before the first email, if any
        if tick(rt, clock).sent:
            break
        clock.advance(days=3, hours=12)
    [message] = smtp_sink.messages
    subject = library.TEMPLATES[library.READY[key].templates()[0]][1]["subject"]
    assert str(message["Subject"]).startswith(subject.split("{")[0].strip().rstrip(","))
    body = message.get_body(preferencelist=("html",))
    assert body is not None and "Unsubscribe" in body.get_content()
