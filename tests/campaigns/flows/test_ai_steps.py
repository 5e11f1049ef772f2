"""An AI send step sends behind its series' rollout: arms by the same assignment as a campaign's
wave (treatment AI content, control and holdout never), AI waves scored first, a rollback stops
treatment for later sends, and a rollout made at activation has a plan sized to the step's rate."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.rollout.assignment import spec_from_row
from campaigns.rollout.bucketing import bucket as bucket_of
from campaigns.rollout.machine import transition
from models import Decision, Rollout, Wave
from tests.campaigns.flows.ai_helpers import ai_flow, enter, step_campaigns, step_rollout_first, step_sends
from tests.campaigns.flows.helpers import start_clock, tick
from tests.conftest import ApiClient
from tests.factories import add_catalog, add_contacts

STAGES = [
    {"name": "40%", "kind": "percent", "exposure_bp": 4000, "gates": {"min_recipients_per_arm": 50}},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 50}},
]


def test_an_ai_step_sends_arms_by_the_rollouts_assignment(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    contacts = add_contacts(session, 240)
    add_catalog(session, contacts)
    flow = ai_flow(session, api)
    rollout_id = step_rollout_first(session, flow["id"], STAGES)
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    clock = start_clock()
    enter(session, clock, contacts[:120])
    assert tick(rt, clock).sent == 120

    sends = step_sends(session, flow["id"])
    assert len(sends) == 120 and {s.state for s in sends} == {"sent"}
    assert {c.rollout_id for c in step_campaigns(session, flow["id"])} == {rollout_id}
    rollout = session.get(Rollout, rollout_id)
    assert rollout is not None
    spec = spec_from_row(rollout)
    for send in sends:
        assert send.rollout_id == rollout_id and send.stage_index == 0
        assert send.bucket == bucket_of(rollout.salt, send.contact_id)
    arms = Counter(s.arm for s in sends)
    assert set(arms) == {"treatment", "control", "holdout"}, arms
    # the holdout is carved from its fixed range; treatment is below the exposure
    buckets = {s.id: int(s.bucket or 0) for s in sends}
    assert all((s.arm == "holdout") == (buckets[s.id] >= 10_000 - spec.holdout_bp) for s in sends)
    assert all(s.arm != "treatment" or buckets[s.id] < 4000 for s in sends)
    contents = {(s.arm, s.content) for s in sends}
    assert ("treatment", "ai") in contents
    assert not {c for a, c in contents if a in ("control", "holdout")} - {"control"}  # never AI
    waves = session.scalars(sa.select(Wave).where(Wave.campaign_id.in_({s.campaign_id for s in sends})))
    assert all(w.scored_at is not None for w in waves)  # scored before sending
    # the step's small waves do not each queue an evaluation: the periodic evaluator judges it
    assert session.scalar(sa.select(sa.func.count()).where(Decision.rollout_id == rollout_id)) == 0

    # a rollback: later entrants of the step get control content, nobody treatment
    transition(session, rollout, "rollback", "test@example.com", "test: rolled back")
    session.commit()
    clock.advance(hours=1)
    enter(session, clock, contacts[120:])
    assert tick(rt, clock).sent == 120
    later = step_sends(session, flow["id"])[120:]
    assert len(later) == 120 and {s.content for s in later} == {"control"}
    assert "treatment" not in {s.arm for s in later}


def test_activation_makes_the_steps_rollout_sized_to_its_stated_rate(
    app: Flask, session: Session, api: ApiClient
) -> None:
    flow = ai_flow(session, api, entries_per_day=40_000)
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    [rollout] = session.scalars(sa.select(Rollout).where(Rollout.series == f"flow:{flow['id']}:picks"))
    assert rollout.state == "ramping" and rollout.plan == "staged" and len(rollout.stages) >= 2
    report = api.get(f"/api/v1/flows/{flow['id']}/report").json
    [step] = report["steps"]
    assert step["rollout"]["id"] == rollout.id and step["rollout"]["state"] == "ramping"
    assert step["rollout"]["cadence"]["kind"] == "flow"
    assert step["rollout"]["cadence"]["source"] == "the step's stated entries per day"
    words = step["rollout"]["forecast"]
    assert words.startswith("on 40,000 contacts a day") and "can tell a 20% drop in conversions" in words
    # activating again (after a pause) keeps the one rollout
    assert api.post(f"/api/v1/flows/{flow['id']}/pause").status_code == 200
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    assert session.scalar(sa.select(sa.func.count()).where(Rollout.series == f"flow:{flow['id']}:picks")) == 1


def test_a_3000_contact_list_says_up_front_what_it_can_learn(
    app: Flask, session: Session, api: ApiClient
) -> None:
    """A welcome flow on a list of 3,000 contacts (made over the last weeks): about 107 a day enter.
    The plan says before the first send what it can catch (a doubling of unsubscribes, slowly), that it
    cannot judge conversions within a year, and that it will not reach everyone."""
    add_contacts(session, 3000)
    flow = api.post(
        "/api/v1/flows",
        json={"name": "Welcome", "definition": {"trigger": {"kind": "contact_created"}, "steps": [
            {"id": "picks", "type": "send", "template_id": ai_template(session), "from_email": "shop@example.com",
             "ai_content": True}]}},
    ).json  # fmt: skip
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    rollout = api.get(f"/api/v1/flows/{flow['id']}/report").json["steps"][0]["rollout"]
    words = rollout["forecast"]
    assert rollout["cadence"]["per_send"] == 107, rollout["cadence"]
    assert words.startswith("on 107 contacts a day this rollout can catch a doubling of unsubscribes")
    assert "it cannot tell a 20% change in conversions within a year" in words
    assert "protective mode" in words and "you chose to learn" not in words, words  # the mode it has
    assert "it does not reach everyone within the forecast's horizon" in words, words


def ai_template(session: Session) -> int:
    from tests.factories import add_template

    return add_template(session, name="Welcome picks").id


def test_an_ai_step_added_to_an_active_flow_gets_its_rollout_when_it_first_sends(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    contacts = add_contacts(session, 6)
    add_catalog(session, contacts)
    flow = ai_flow(session, api)
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    definition = dict(flow["definition"])
    extra = {**definition["steps"][0], "id": "more", "entries_per_day": 500}
    definition["steps"] = [*definition["steps"], extra]
    assert api.patch(f"/api/v1/flows/{flow['id']}", json={"definition": definition}).status_code == 200
    assert session.scalar(sa.select(Rollout.id).where(Rollout.series == f"flow:{flow['id']}:more")) is None
    clock = start_clock()
    enter(session, clock, contacts)
    assert tick(rt, clock).sent == 12
    session.expire_all()
    made = session.scalar(sa.select(Rollout).where(Rollout.series == f"flow:{flow['id']}:more"))
    assert made is not None and made.state == "ramping"
    sends = step_sends(session, flow["id"])
    assert {s.rollout_id for s in sends} == set(
        session.scalars(sa.select(Rollout.id).where(Rollout.series.like(f"flow:{flow['id']}:%")))
    )
