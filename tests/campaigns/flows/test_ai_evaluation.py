"""A flow step's rollout ramps on matured evidence while contacts keep entering: the evaluator's
periodic job (not a wave's end) judges it, day after simulated day, with an injected clock."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.decisions.evaluation import evaluate_all, live_rollout_ids
from campaigns.demo.simulate import Audience, Behaviour, simulate_sends
from campaigns.events.ingest import ingest
from models import Decision, Rollout, simulated_now
from tests.campaigns.flows.ai_helpers import ai_flow, enter, step_rollout_first, step_sends
from tests.campaigns.flows.helpers import start_clock, tick
from tests.conftest import ApiClient
from tests.factories import add_catalog, add_contacts

GATES = {"min_recipients_per_arm": 40, "min_events": 10, "min_duration_hours": 24}
STAGES = [
    {"name": "20%", "kind": "percent", "exposure_bp": 2000, "gates": GATES},
    {
        "name": "100%",
        "kind": "percent",
        "exposure_bp": 10_000,
        "gates": {**GATES, "min_recipients_per_arm": 20},
    },
]
KEEN = Audience(
    default=Behaviour(open_rate=0.6, click_given_open=0.5, convert_given_click=0.5, mean_delay_hours=3)
)
PER_DAY = 100
DAYS = 9


def test_the_evaluator_advances_a_flow_rollout_on_matured_evidence_as_contacts_enter(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    contacts = add_contacts(session, PER_DAY * DAYS)
    add_catalog(session, contacts)
    flow = ai_flow(session, api)
    rollout_id = step_rollout_first(
        session, flow["id"], STAGES, holdout_bp=500,
        guardrails={"unsubscribe_rate": {"cap": 0.05}, "policy": {"min_samples_per_arm": 20}},
    )  # fmt: skip
    assert api.post(f"/api/v1/flows/{flow['id']}/activate").status_code == 200
    clock = start_clock()
    outcomes: list[tuple[int, str, int]] = []  # (day, outcome, stage after)
    for day in range(DAYS):
        enter(session, clock, contacts[day * PER_DAY : (day + 1) * PER_DAY])
        assert tick(rt, clock).sent == PER_DAY
        clock.advance(hours=23)
        sends = [s.id for s in step_sends(session, flow["id"])]
        simulate_sends(rt, session, sends, audience=KEEN, seed=3, until=clock.now)
        with simulated_now(clock.now):
            ingest(rt)
            with rt.session() as probe:
                assert rollout_id in live_rollout_ids(probe)  # the periodic job looks at it
            ids = evaluate_all(now=clock.now)
        session.expire_all()
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        decision = session.scalar(
            sa.select(Decision).where(Decision.id.in_(ids), Decision.rollout_id == rollout_id)
        )
        assert decision is not None
        outcomes.append((day, decision.outcome, rollout.stage_index))
        clock.advance(hours=1)

    advances = [(day, stage) for day, outcome, stage in outcomes if outcome == "advance"]
    assert advances, outcomes
    assert outcomes[0][1] == "hold" and outcomes[0][2] == 0, outcomes  # nothing matured on day one
    first_day, stage_after = advances[0]
    # no advance before the conversion window (72 h) had passed for the first days' recipients
    assert first_day >= 3 and stage_after == 1, outcomes
    assert not [o for o in outcomes if o[1] in ("rollback", "pause")], outcomes
    decision = session.scalar(
        sa.select(Decision).where(Decision.rollout_id == rollout_id, Decision.outcome == "advance").limit(1)
    )
    assert decision is not None and decision.applied
    # contacts entering after the advance are sent in the new stage, at its exposure
    later = step_sends(session, flow["id"])[(first_day + 1) * PER_DAY :]
    assert later and {s.stage_index for s in later} == {1}
