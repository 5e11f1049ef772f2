"""Simulated recipients: opens, clicks, conversions and unsubscribes for sent messages, so the demo
and a local trial show engagement arriving. Never people: every event carries `SIMULATED_AGENT` and
pages that show such numbers say "simulated".

The events take the real path: they are pushed to the tracking stream exactly as the tracking
endpoints push them (`campaigns.events.tracking.push`), then the ingest worker classifies, dedupes, stores
and aggregates them. Outcomes are drawn per recipient from a seeded generator (same seed, same
events; the dedupe keys make a replay store nothing twice) with a delay after the recipient's own
send; `time_scale` shrinks the delays (the local outbox uses minutes, not hours).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience import demo_scope
from campaigns.events.tracking import RawEvent, push
from campaigns.runtime import Runtime
from models import CampaignLink, Contact, Event, Send

SIMULATED_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64; simulated recipient; mailramp) Gecko/20100101 Firefox/128.0"
)
SIMULATED_IP = "192.0.2.1"  # TEST-NET-1: documentation addresses, never a real client


PIPELINE = 500  # simulated events pushed per round trip


@dataclass(frozen=True)
class Behaviour:
    """How one arm's simulated recipients behave."""

    open_rate: float = 0.30
    click_given_open: float = 0.15
    convert_given_click: float = 0.12
    order_value: float = 35.0
    unsubscribe_rate: float = 0.002
    mean_delay_hours: float = 5.0


@dataclass(frozen=True)
class Audience:
    """Behaviour per arm (`default` for arms not named)."""

    arms: Mapping[str, Behaviour] = field(default_factory=dict)
    default: Behaviour = field(default_factory=Behaviour)

    def of(self, arm: str) -> Behaviour:
        return self.arms.get(arm, self.default)


# AI content helps a little: more clicks and conversions, and the same unsubscribes.
HELPFUL_AI = Audience(
    arms={
        "treatment": Behaviour(
            open_rate=0.31, click_given_open=0.22, convert_given_click=0.17, order_value=38.0
        )
    }
)


@dataclass
class SimulationReport:
    recipients: int = 0
    events: dict[str, int] = field(default_factory=dict)


def _rng(seed: int, send_id: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{send_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _delay(rng: random.Random, mean_hours: float, time_scale: float) -> timedelta:
    hours = -math.log(1.0 - rng.random()) * mean_hours
    return timedelta(hours=(hours + 0.05) * time_scale)  # never within the scanners' first seconds


def simulate_sends(
    rt: Runtime,
    session: Session,
    send_ids: list[int] | None = None,
    *,
    campaign_id: int | None = None,
    audience: Audience = HELPFUL_AI,
    seed: int = 1,
    since: datetime | None = None,
    until: datetime | None = None,
    time_scale: float = 1.0,
    demo_contacts_only: bool = False,
) -> SimulationReport:
    """Push the simulated events of these sends (or of every sent message of the campaign) whose
    time is after `since` and at or before `until` (open ends when None). Call
    `campaigns.events.ingest.ingest` after. `demo_contacts_only`: the story's recipients act only
    on the demo's own contacts (campaigns.audience.demo_scope), never on a real one."""
    query = sa.select(Send.id, Send.campaign_id, Send.arm, Send.sent_at).where(
        Send.state == "sent", Send.sent_at.is_not(None)
    )
    if demo_contacts_only:
        demo = sa.select(Contact.id).where(demo_scope.demo_contacts_only())
        query = query.where(Send.contact_id.in_(demo.scalar_subquery()))
    if send_ids is not None:
        query = query.where(Send.id.in_(send_ids))
    if campaign_id is not None:
        query = query.where(Send.campaign_id == campaign_id)
    rows = session.execute(query.order_by(Send.id)).all()
    links: dict[int, list[int]] = {}
    report = SimulationReport()
    # pipelined: one round trip (and one fsync of an `appendfsync always` Redis) per PIPELINE events,
    # not per event (the story's 6,000 events took half its replay one by one)
    pipe = rt.redis.pipeline(transaction=False)
    queued = 0
    for send_id, campaign, arm, sent_raw in rows:
        if sent_raw is None:
            continue
        sent_at: datetime = sent_raw.replace(tzinfo=UTC) if sent_raw.tzinfo is None else sent_raw
        if campaign not in links:
            links[campaign] = list(
                session.scalars(sa.select(CampaignLink.id).where(CampaignLink.campaign_id == campaign))
            )
        report.recipients += 1
        for kind, at, link_id, value in _outcomes(rng=_rng(seed, send_id), behaviour=audience.of(str(arm)),
                                                 sent_at=sent_at, links=links[campaign], time_scale=time_scale):  # fmt: skip
            if (until is not None and at > until) or (since is not None and at <= since):
                continue
            push(
                pipe,
                RawEvent(kind=kind, send_id=int(send_id), link_id=link_id, value=value, user_agent=SIMULATED_AGENT,
                         ip=SIMULATED_IP, at=at.timestamp(), key=f"sim:{send_id}:{kind}"),
            )  # fmt: skip
            report.events[kind] = report.events.get(kind, 0) + 1
            queued += 1
            if queued >= PIPELINE:
                pipe.execute()
                queued = 0
    pipe.execute()
    return report


def _outcomes(
    *, rng: random.Random, behaviour: Behaviour, sent_at: datetime, links: list[int], time_scale: float
) -> list[tuple[str, datetime, int | None, float]]:
    out: list[tuple[str, datetime, int | None, float]] = []
    draws = [rng.random() for _ in range(4)]
    if draws[0] >= behaviour.open_rate:
        if draws[3] < behaviour.unsubscribe_rate:
            out.append(
                ("unsubscribe", sent_at + _delay(rng, behaviour.mean_delay_hours, time_scale), None, 0.0)
            )
        return out
    opened = sent_at + _delay(rng, behaviour.mean_delay_hours, time_scale)
    out.append(("open", opened, None, 0.0))
    if draws[3] < behaviour.unsubscribe_rate / max(behaviour.open_rate, 1e-9):
        out.append(("unsubscribe", opened + timedelta(minutes=2 * time_scale), None, 0.0))
        return out
    if draws[1] < behaviour.click_given_open and links:
        clicked = opened + timedelta(minutes=(1 + 20 * rng.random()) * time_scale)
        out.append(("click", clicked, rng.choice(links), 0.0))
        if draws[2] < behaviour.convert_given_click:
            value = round(behaviour.order_value * (0.5 + rng.random()), 2)
            out.append(("conversion", clicked + timedelta(hours=rng.random() * 6 * time_scale), None, value))
    return out


def is_simulated(session: Session, *, campaign_id: int | None = None, rollout_id: int | None = None) -> bool:
    """Did simulated recipients produce any of this campaign's (or rollout's) events?"""
    query = sa.select(Event.id).where(Event.user_agent == SIMULATED_AGENT)
    if campaign_id is not None:
        query = query.where(Event.campaign_id == campaign_id)
    if rollout_id is not None:
        query = query.where(Event.rollout_id == rollout_id)
    return session.scalar(query.limit(1)) is not None


# -- the local outbox's simulated recipients --------------------------------------------------------

OUTBOX_SCALE = 1 / 60  # one simulated hour passes in a minute
OUTBOX_WINDOW = timedelta(hours=3)  # sends older than this have done all they will do
OUTBOX_MARK = "mailramp:simulate:outbox-until"
# nobody unsubscribes: these are the user's own contacts
OUTBOX_AUDIENCE = Audience(
    arms={"treatment": dataclasses.replace(HELPFUL_AI.of("treatment"), unsubscribe_rate=0.0)},
    default=Behaviour(unsubscribe_rate=0.0),
)


def outbox_recipients_job() -> int:
    """The periodic job: when simulated recipients are on (MAILRAMP_SIMULATE_RECIPIENTS with the
    local outbox), push the events that came due since the last run, then ingest them."""
    from campaigns import runtime
    from campaigns.events.ingest import ingest
    from models import utcnow

    rt = runtime.current()
    if not rt.settings.simulated_recipients:
        return 0
    now = utcnow()
    raw = rt.redis.get(OUTBOX_MARK)
    since = (
        datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
        if raw
        else now - OUTBOX_WINDOW
    )
    with rt.session() as session:
        recent = list(
            session.scalars(
                sa.select(Send.id).where(Send.state == "sent", Send.sent_at >= now - OUTBOX_WINDOW)
            )
        )
        report = simulate_sends(
            rt,
            session,
            recent,
            audience=OUTBOX_AUDIENCE,
            seed=11,
            since=since,
            until=now,
            time_scale=OUTBOX_SCALE,
        )
    rt.redis.set(OUTBOX_MARK, now.isoformat())
    if report.events:
        ingest(rt)
    return sum(report.events.values())
