"""The demo's story: five weeks of a campaign series replayed in seconds, through the real engine.

A weekly newsletter ("Weekly picks #1..#4") shares the rollout "AI picks: weekly newsletter", which
goes shadow -> 10% -> 50% -> 100% -> completed, one stage a week, each advance decided by the
evaluator on the engagement of simulated recipients; a thousand recipients a week cannot show a 20%
drop in purchases, so the evaluator will not complete it, and an approver does, knowingly: the rollout
page says "completed without evidence" (`campaigns.decisions.power`). Then a flash sale's rollout ("AI subject
lines: flash sale") makes simulated recipients unsubscribe far more often, and the evaluator rolls it
back on the unsubscribe guardrail. And a flow, "Post-purchase cross-sell", ramps its AI step over two
weeks of contacts entering day by day (campaigns.demo.flow_story).

Nothing is written for the UI's sake: rollouts are created and moved by `campaigns.rollout.changes`
and the state machine, waves are planned by the planner and sent by `send_batch` (a demo campaign's messages never leave
the installation: campaigns.sending.demo_transport drops the replay's, whatever `SMTP_URL` says),
to the demo's own contacts only (the segment "Demo contacts", and the planner's guard in
campaigns.audience.demo_scope), events go through
the tracking stream and the ingest worker (`campaigns.demo.simulate`), decisions come from
`campaigns.decisions.evaluation.evaluate`. Only the clock is simulated (`models.simulated_now`): week by week,
ending a few days before today. Every page that shows these numbers says "simulated recipients".
Each campaign is one newsletter: once its wave is out it is closed as sent (no more waves).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import DEMO_SENDER
from campaigns.campaign_records import create_campaign
from campaigns.decisions.evaluation import evaluate
from campaigns.demo.simulate import Audience, Behaviour, simulate_sends
from campaigns.demo.workspace import DEMO_SEGMENT
from campaigns.events.ingest import ingest
from campaigns.rollout import changes
from campaigns.rollout.machine import transition
from campaigns.runtime import Runtime
from campaigns.sending.demo_transport import DISCARD_URL
from campaigns.sending.planner import plan_wave
from campaigns.sending.send import send_batch
from models import Campaign, Decision, Rollout, Segment, Template, simulated_now

log = logging.getLogger(__name__)

ACTOR = "demo story (simulated)"
APPROVER = "demo approver (simulated)"
LABEL = "(simulated)"  # in every name, so lists, the dashboard and the audit log say it too
SERIES = "Weekly picks"
SALE_SERIES = "Flash sale"
ROLLOUT_A = f"AI picks: weekly newsletter {LABEL}"
ROLLOUT_B = f"AI subject lines: flash sale {LABEL}"
GATES = {"min_recipients_per_arm": 40, "min_events": 10, "min_duration_hours": 24}
PLAN_A = [
    {"name": "shadow", "kind": "shadow", "exposure_bp": 1000, "gates": {"min_duration_hours": 24}},
    {"name": "10%", "kind": "percent", "exposure_bp": 1000, "gates": GATES},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": GATES},
    # at 100% only the 5% holdout is left to compare with
    {
        "name": "100%",
        "kind": "percent",
        "exposure_bp": 10_000,
        "gates": {**GATES, "min_recipients_per_arm": 20},
    },
]
PLAN_B = [
    {"name": "25%", "kind": "percent", "exposure_bp": 2500, "gates": GATES},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": GATES},
]
POLICY = {"min_samples_per_arm": 20}  # the smallest stage gate: at 100% only the 5% holdout compares
# the newsletter's recipients: AI picks get clicked and bought more often
NEWSLETTER = Audience(
    arms={
        "treatment": Behaviour(
            open_rate=0.36, click_given_open=0.40, convert_given_click=0.32, order_value=38.0
        )
    },
    default=Behaviour(open_rate=0.35, click_given_open=0.30, convert_given_click=0.25, order_value=35.0),
)
# the flash sale's AI subject lines annoy people: treatment unsubscribes ten times as often
ANNOYING_AI = Audience(
    arms={
        "treatment": Behaviour(
            open_rate=0.40, click_given_open=0.30, convert_given_click=0.25, unsubscribe_rate=0.05
        )
    },
    default=Behaviour(
        open_rate=0.35, click_given_open=0.30, convert_given_click=0.25, unsubscribe_rate=0.004
    ),
)
EVALUATE_AFTER = timedelta(days=4)  # later than the longest default maturation window (72 h)


@dataclass
class StorySummary:
    built: bool = False
    rollouts: dict[str, str] = field(default_factory=dict)  # name -> final state
    campaigns: list[str] = field(default_factory=list)
    decisions: int = 0
    flow: dict[str, Any] = field(default_factory=dict)  # the flow's replay (campaigns.demo.flow_story)


def _replay_runtime(rt: Runtime) -> Runtime:
    """The replay's sends are dropped at once (thousands of simulated messages nobody reads)."""
    settings = dataclasses.replace(rt.settings, smtp_url=DISCARD_URL)
    return Runtime(session_factory=rt.session_factory, redis=rt.redis, settings=settings)


def story_exists(session: Session) -> bool:
    return session.scalar(sa.select(Rollout.id).where(Rollout.name == ROLLOUT_A)) is not None


def build_story(
    session: Session, rt: Runtime, *, now: datetime | None = None, audience: int = 1000, seed: int = 7
) -> StorySummary:
    """Replay the story once (nothing when it is there already or the workspace has no template)."""
    summary = StorySummary()
    template_id = session.scalar(sa.select(Template.id).order_by(Template.id).limit(1))
    if story_exists(session) or template_id is None:
        return summary
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = (now - timedelta(days=34)).replace(hour=9, minute=0, second=0, microsecond=0)
    reports = list(
        session.scalars(sa.select(Segment.id).where(Segment.name.in_(("UK customers", "Gold tier"))))
    )
    story_rt = _replay_runtime(rt)
    segment_id = session.scalar(sa.select(Segment.id).where(Segment.name == DEMO_SEGMENT))
    rollout_a = _rollout(session, ROLLOUT_A, SERIES, PLAN_A, reports, start - timedelta(hours=1))
    for week in range(4):
        sent = start + timedelta(days=7 * week)
        name = f"{SERIES} #{week + 1} {LABEL}"
        _week(session, story_rt, rollout_a, (template_id, segment_id), name, sent, audience, seed, NEWSLETTER)
        summary.campaigns.append(name)
    _complete_by_hand(session, rollout_a, start + timedelta(days=27))
    sale = start + timedelta(days=28)
    rollout_b = _rollout(session, ROLLOUT_B, SALE_SERIES, PLAN_B, reports, sale - timedelta(hours=1))
    sale_name = f"{SALE_SERIES} {LABEL}"
    _week(
        session,
        story_rt,
        rollout_b,
        (template_id, segment_id),
        sale_name,
        sale,
        audience * 2,
        seed,
        ANNOYING_AI,
    )
    summary.campaigns.append(sale_name)
    for rollout in (rollout_a, rollout_b):
        session.refresh(rollout)
        summary.rollouts[rollout.name] = rollout.state
    summary.decisions = int(
        session.scalar(
            sa.select(sa.func.count()).where(Decision.rollout_id.in_((rollout_a.id, rollout_b.id)))
        )
        or 0
    )
    from campaigns.demo.flow_story import build_flow_story

    flow = build_flow_story(session, story_rt, template_id, end=now, actor=ACTOR, seed=seed)
    summary.flow = dataclasses.asdict(flow)
    summary.built = True
    return summary


def _rollout(
    session: Session, name: str, series: str, plan: list[dict[str, Any]], reports: list[int], at: datetime
) -> Rollout:
    with simulated_now(at):
        rollout = changes.create_rollout(
            session, name, ACTOR, series=series, stages=plan, holdout_bp=500, primary_metric="conversion_rate",
            guardrails={"unsubscribe_rate": {"cap": 0.01}, "policy": POLICY}, report_segments=reports,
        )  # fmt: skip
        transition(session, rollout, "start", ACTOR, "demo: first stage", now=at)
        session.commit()
    return rollout


def _complete_by_hand(session: Session, rollout: Rollout, at: datetime) -> None:
    """A thousand simulated recipients a week cannot show a 20% drop in purchases: the evaluator holds
    at 100% ("not completing on noise") and an approver completes it knowingly, recorded as
    "completed without evidence" (campaigns.decisions.power)."""
    session.refresh(rollout)
    if rollout.state != "ramping" or rollout.stage_index + 1 < len(rollout.stages or []):
        return
    with simulated_now(at):
        transition(session, rollout, "advance", APPROVER, "demo: a small list, completed knowingly", now=at,
                   override_gates=True)  # fmt: skip
        session.commit()


def _week(
    session: Session,
    rt: Runtime,
    rollout: Rollout,
    content: tuple[int, int | None],
    name: str,
    sent: datetime,
    audience: int,
    seed: int,
    behaviour: Audience,
) -> None:
    """One campaign: send a wave to demo contacts, close the campaign (one newsletter, one wave), let
    simulated recipients react, evaluate twice."""
    template_id, segment_id = content
    with simulated_now(sent):
        campaign = create_campaign(
            session,
            {"name": name, "template_id": template_id, "segment_id": segment_id, "from_email": DEMO_SENDER,
             "from_name": "The Demo Shop", "rollout_id": rollout.id, "series": rollout.series},
            actor=ACTOR,
        )  # fmt: skip
        session.commit()
        wave, batches = plan_wave(session, campaign.id, audience, rt.settings.batch_size, sent)
        session.commit()
        wave_id = wave.id
        for batch in batches:
            send_batch(rt, campaign.id, wave_id, batch.batch)
    session.expire_all()
    closed = session.get(Campaign, campaign.id)
    if closed is not None and closed.status == "paused":  # its one wave is out: nothing left to send
        closed.status = "sent"
        session.commit()
    for days in (EVALUATE_AFTER, timedelta(days=6)):
        moment = sent + days
        simulate_sends(rt, session, campaign_id=campaign.id, audience=behaviour, seed=seed, until=moment,
                       demo_contacts_only=True)  # fmt: skip
        with simulated_now(moment):
            ingest(rt)
            session.expire_all()
            decision = evaluate(session, rollout.id, actor="evaluator", now=moment)
            session.commit()
            log.info("demo story: %s at %s: %s", rollout.name, moment.date(), decision.outcome)


def demo_story_job() -> dict[str, Any]:
    """Replay the demo's story on a worker (`campaigns.jobs.enqueue_demo_story`): it takes seconds, not
    the startup's."""
    from campaigns import runtime

    rt = runtime.current()
    with rt.session() as session:
        return dataclasses.asdict(build_story(session, rt))
