"""The demo's flow: "Post-purchase cross-sell (simulated)", two weeks replayed through the real engine.

Every simulated day some of the demo's own contacts buy (a `demo_purchase` contact event); the flow
waits a day, then sends the AI step `picks` (the recommender's picks) behind the rollout
"AI picks: post-purchase cross-sell (simulated)" (series `flow:<flow>:picks`, a small demo plan
20% -> 50% -> 100%). The scheduler's own functions advance the journeys (`claim`, `advance`), the send
path sends them (`send_batch`, the demo transport: nothing leaves the installation), simulated
recipients open, click and buy (`campaigns.demo.simulate`, demo contacts only), the ingest worker
stores it, and every simulated evening the evaluator judges the rollout on matured evidence: the
ramp goes stage by stage as contacts keep entering. Only the clock is simulated.

When the replay ends the flow is paused, so nobody else enters it: no real contact ever does (the
trigger is the demo's own event name, and the steps send from the demo's domain).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import DEMO_SENDER, demo_contacts_only
from campaigns.decisions.evaluation import evaluate
from campaigns.demo.simulate import Audience, Behaviour, simulate_sends
from campaigns.events.ingest import ingest
from campaigns.flows.definition import FlowDefinition
from campaigns.flows.records import change_state, create_flow
from campaigns.flows.scheduler import TickOutcome, advance, claim
from campaigns.flows.sends import WaveBook
from campaigns.flows.triggers import record_event
from campaigns.rollout import changes
from campaigns.rollout.flow_rate import step_series
from campaigns.rollout.machine import transition
from campaigns.runtime import Runtime
from campaigns.sending.send import send_batch
from models import Contact, Decision, Flow, FlowStepCampaign, Rollout, Send, simulated_now

log = logging.getLogger(__name__)

FLOW_NAME = "Post-purchase cross-sell (simulated)"
ROLLOUT_F = "AI picks: post-purchase cross-sell (simulated)"
EVENT = "demo_purchase"
STEP = "picks"
DAYS = 14
GATES = {"min_recipients_per_arm": 30, "min_events": 10, "min_duration_hours": 24}
PLAN_F = [
    {"name": "20%", "kind": "percent", "exposure_bp": 2000, "gates": GATES},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": GATES},
    {
        "name": "100%",
        "kind": "percent",
        "exposure_bp": 10_000,
        "gates": {**GATES, "min_recipients_per_arm": 20},
    },
]
# buyers come back for the picks: AI picks get clicked and bought a little more often
CROSS_SELL = Audience(
    arms={"treatment": Behaviour(open_rate=0.6, click_given_open=0.55, convert_given_click=0.5, order_value=24.0,
                                 mean_delay_hours=3.0)},
    default=Behaviour(open_rate=0.6, click_given_open=0.5, convert_given_click=0.45, order_value=22.0,
                      mean_delay_hours=3.0),
)  # fmt: skip


@dataclass
class FlowStory:
    built: bool = False
    flow_id: int | None = None
    rollout_state: str = ""
    stage_index: int = 0
    entered: int = 0
    sent: int = 0
    days: list[dict[str, object]] = field(default_factory=list)  # per simulated day: sent, decision


def flow_story_exists(session: Session) -> bool:
    return session.scalar(sa.select(Flow.id).where(Flow.name == FLOW_NAME)) is not None


def build_flow_story(
    session: Session,
    rt: Runtime,
    template_id: int,
    *,
    end: datetime,
    actor: str,
    per_day: int = 60,
    seed: int = 7,
) -> FlowStory:
    """Replay the flow's two weeks, ending at `end` (nothing when it is there already)."""
    story = FlowStory()
    if flow_story_exists(session):
        return story
    contacts = list(session.scalars(sa.select(Contact.id).where(demo_contacts_only()).order_by(Contact.id)))
    per_day = min(per_day, len(contacts) // DAYS)
    if per_day <= 0:
        return story
    start = (end - timedelta(days=DAYS + 1)).replace(hour=9, minute=0, second=0, microsecond=0)
    flow_id, rollout_id = _made(session, template_id, actor, start - timedelta(hours=1))
    story.flow_id = flow_id
    for day in range(DAYS):
        moment = start + timedelta(days=day)
        buyers = contacts[day * per_day : (day + 1) * per_day]
        with simulated_now(moment):
            for contact_id in buyers:
                record_event(session, contact_id, EVENT, key=f"demo:{EVENT}:{contact_id}")
            session.commit()
        story.entered += len(buyers)
        sent = _tick(session, rt, moment)
        story.sent += sent
        evening = moment + timedelta(hours=20)
        sends = list(
            session.scalars(
                sa.select(Send.id)
                .join(FlowStepCampaign, FlowStepCampaign.campaign_id == Send.campaign_id)
                .where(FlowStepCampaign.flow_id == flow_id)
            )
        )
        simulate_sends(
            rt, session, sends, audience=CROSS_SELL, seed=seed, until=evening, demo_contacts_only=True
        )
        with simulated_now(evening):
            ingest(rt)
            session.expire_all()
            decision: Decision = evaluate(session, rollout_id, actor="evaluator", now=evening)
            session.commit()
        story.days.append({"day": day, "sent": sent, "decision": decision.outcome})
        log.info("demo flow: day %s: %s sent, %s", day, sent, decision.outcome)
    with simulated_now(start + timedelta(days=DAYS)):
        change_state(session, flow_id, "pause", actor)  # nobody else enters the demo's flow
        session.commit()
    rollout = session.get(Rollout, rollout_id)
    assert rollout is not None
    story.rollout_state, story.stage_index, story.built = rollout.state, rollout.stage_index, True
    return story


def _made(session: Session, template_id: int, actor: str, at: datetime) -> tuple[int, int]:
    definition = FlowDefinition.model_validate({
        "trigger": {"kind": "event", "name": EVENT},
        "steps": [
            {"id": "next-day", "type": "wait", "days": 1},
            {"id": STEP, "type": "send", "template_id": template_id, "from_email": DEMO_SENDER,
             "from_name": "The Demo Shop", "ai_content": True},
        ],
        "exit_conditions": [],
        "re_entry": {"rule": "never"},
    })  # fmt: skip
    with simulated_now(at):
        flow = create_flow(session, FLOW_NAME, definition, actor)
        rollout = changes.create_rollout(
            session, ROLLOUT_F, actor, series=step_series(flow.id, STEP), stages=PLAN_F, holdout_bp=500,
            primary_metric="conversion_rate",
            guardrails={"unsubscribe_rate": {"cap": 0.02}, "policy": {"min_samples_per_arm": 20}},
        )  # fmt: skip
        transition(session, rollout, "start", actor, "demo: first stage", now=at)
        change_state(session, flow.id, "activate", actor)  # finds the series' rollout: one per step
        session.commit()
        return int(flow.id), int(rollout.id)


def _tick(session: Session, rt: Runtime, moment: datetime) -> int:
    """One scheduler run at `moment`, its batches sent at once (the scheduler's own claim/advance)."""
    with simulated_now(moment):
        book, outcome = WaveBook(rt.settings.batch_size), TickOutcome()
        for entry in claim(session, moment, 100_000):
            advance(session, entry, moment, book, outcome)
        planned = book.planned()
        session.commit()
        for batch in planned:
            send_batch(rt, batch.campaign_id, batch.wave_id, batch.batch)
    return outcome.sent
