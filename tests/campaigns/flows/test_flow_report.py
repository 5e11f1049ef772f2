"""A flow's report per step and arm adds up the step's ledger rows; the CSV escapes formulas; the
report section renders; viewers read it, a missing flow is a 404."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from app.auth import create_user
from app.extensions import db
from campaigns.demo.simulate import Audience, Behaviour, simulate_sends
from campaigns.events.ingest import ingest
from models import Role, Rollout, simulated_now
from tests.campaigns.flows.ai_helpers import ai_flow, enter, step_rollout_first, step_sends
from tests.campaigns.flows.helpers import start_clock, tick
from tests.conftest import ApiClient
from tests.factories import add_catalog, add_contacts

STAGES = [
    {
        "name": "=HYPERLINK(1)",
        "kind": "percent",
        "exposure_bp": 5000,
        "gates": {"min_recipients_per_arm": 50},
    },
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 50}},
]
BUSY = Audience(
    default=Behaviour(open_rate=0.7, click_given_open=0.5, convert_given_click=0.4, unsubscribe_rate=0.05)
)


def test_the_report_matches_the_ledger_per_step_and_arm(
    app: Flask, session: Session, api: ApiClient, make_api_client: Any
) -> None:
    rt = app.extensions["mailramp"]
    contacts = add_contacts(session, 80)
    add_catalog(session, contacts)
    flow = ai_flow(session, api)
    rollout_id = step_rollout_first(session, flow["id"], STAGES)
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    clock = start_clock()
    enter(session, clock, contacts)
    assert tick(rt, clock).sent == 80
    clock.advance(days=2)
    sends = step_sends(session, flow["id"])
    simulate_sends(rt, session, [s.id for s in sends], audience=BUSY, seed=5, until=clock.now)
    with simulated_now(clock.now):
        ingest(rt)

    sends = step_sends(session, flow["id"])
    want: dict[str, Counter[str]] = defaultdict(Counter)
    for s in sends:
        row = want[s.arm]
        row["sent"] += s.state == "sent"
        row["opens"] += s.opened_at is not None
        row["clicks"] += s.clicked_at is not None
        row["conversions"] += s.converted_at is not None
        row["unsubscribes"] += s.unsubscribed_at is not None
    assert sum(r["opens"] for r in want.values()) > 10  # the simulation did something to count

    answer = api.get(f"/api/v1/flows/{flow['id']}/report")
    assert answer.status_code == 200, answer.json
    [step] = answer.json["steps"]
    assert step["step_id"] == "picks" and step["ai_content"] is True
    got = {a["arm"]: a for a in step["arms"]}
    assert set(got) == set(want)
    for arm, counts in want.items():
        for key, value in counts.items():
            assert got[arm][key] == value, (arm, key)
    assert step["total"]["sent"] == len(sends) == 80
    assert step["rollout"]["id"] == rollout_id and step["rollout"]["state"] == "ramping"
    assert step["rollout"]["stage"] == "=HYPERLINK(1)"

    exported = api.get(f"/api/v1/flows/{flow['id']}/report.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {line["arm"] for line in lines} == set(want) | {"all"}
    assert all(line["stage"] == "'=HYPERLINK(1)" for line in lines)  # never a formula
    assert int(next(line for line in lines if line["arm"] == "all")["sent"]) == 80

    with app.test_request_context():
        create_user("report-reader@example.com", "correct horse battery staple", Role.viewer)
        db().commit()
    viewer = app.test_client()
    signed_in = viewer.post(
        "/login", data={"email": "report-reader@example.com", "password": "correct horse battery staple"}
    )
    assert signed_in.status_code == 302
    page = viewer.get(f"/flows/{flow['id']}")  # the flow's own page carries the report
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="flow-report"' in html
    assert 'id="flow-step-picks"' in html and f"/rollouts/{rollout_id}" in html
    assert 'href="#flow-step-picks"' in html  # the step's line points at its report
    assert "=HYPERLINK(1)" in html and "simulated" not in html

    viewer = make_api_client("viewer")
    assert viewer.get(f"/api/v1/flows/{flow['id']}/report").status_code == 200
    assert api.get("/api/v1/flows/999999/report").status_code == 404
    assert api.get("/api/v1/flows/999999/report.csv").status_code == 404
    assert session.get(Rollout, rollout_id) is not None
