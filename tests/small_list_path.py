"""The README's campaign path on a small list, week after simulated week (shared by
tests/test_small_list_rollouts.py and bench/small_lists.py).

What a newcomer does (README "Your first campaign", through the JSON API): import contacts, make a
segment and a template with AI content, create the campaign with ``ai`` (the plan sized by the
planner), then send every week: the first week the campaign itself, later weeks a new campaign of the
series joining the rollout (``rollout_id``); each wave is planned by the API and sent by the real rq
worker (a SimpleWorker in burst mode) into the test SMTP server.

Simulated recipients react to each send: opens, clicks, conversions and unsubscribes at stated
rates, drawn per send from a generator seeded by (seed, send id), with delays after the send. The
events take the tracking endpoints' path: pushed to the tracking stream
(`campaigns.events.tracking.push`), then stored and aggregated by the ingest worker
(`campaigns.events.ingest.ingest`). In the harmful scenario AI-content (treatment) recipients
unsubscribe three times as often.

Time is the product's own simulated clock (`models.simulated_now`: every timestamp the engine writes
comes from it): the weeks are placed in the past, ending before the real now, and after each simulated
day the periodic evaluator runs (`campaigns.decisions.evaluation.evaluate_all`, as the rq cron job
does, at that moment), until the rollout leaves the ramp or the last week's looks are done.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from rq import SimpleWorker

from campaigns.decisions.evaluation import evaluate_all
from campaigns.demo.simulate import SIMULATED_AGENT, SIMULATED_IP
from campaigns.events.ingest import ingest
from campaigns.events.tracking import RawEvent, push
from campaigns.ops.queues import all_queues
from campaigns.runtime import Runtime
from models import CampaignLink, Contact, Send, simulated_now

# Baselines per recipient (the planner's stated defaults: conversions 2%, clicks 3%, unsubscribes 0.3%)
OPEN_RATE = 0.20
CLICK_GIVEN_OPEN = 0.15  # clicks: 3% of recipients
CONVERSION_RATE = 0.02
UNSUBSCRIBE_RATE = 0.003
HARM_FACTOR = 3.0  # the harmful scenario: AI-content recipients unsubscribe three times as often
LOOK_DAYS = 7  # one look a simulated day, the last an hour before the next weekly send
WEEK = timedelta(days=7)

Api = Any  # tests.conftest.ApiClient (or the bench's): get/post returning Flask test responses


@dataclass
class Look:
    week: int  # 1-based: the look follows this many weekly sends
    at: datetime
    state: str
    stage_index: int
    outcome: str
    reasons: list[str]
    blocking: list[dict[str, Any]]  # the latest decision's blocking gates (holds.blocking_gates)


@dataclass
class Run:
    contacts: int
    harmful: bool
    seed: int
    rollout_id: int = 0
    created: dict[str, Any] = field(default_factory=dict)  # the POST /campaigns answer
    rollout_at_creation: dict[str, Any] = field(default_factory=dict)  # GET /rollouts/<id> then
    looks: list[Look] = field(default_factory=list)
    sent_per_week: list[dict[str, int]] = field(default_factory=list)  # arm -> sends

    @property
    def final(self) -> Look:
        return self.looks[-1]

    def rolled_back_after(self) -> int | None:
        """The weekly send after which the rollout was rolled back (None: it was not)."""
        return next((look.week for look in self.looks if look.state == "rolled_back"), None)

    def advanced_after(self) -> int | None:
        return next((look.week for look in self.looks if look.stage_index > 0), None)


def contacts_csv(n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "country", "plan", "consent"])
    for i in range(n):
        country = ("Germany", "United Kingdom", "France")[i % 3]
        writer.writerow(
            [f"reader.{i}@example.com", f"Reader {i}", country, "pro" if i % 2 else "free", "yes"]
        )
    return out.getvalue().encode()


def _rng(key: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _hours(rng: random.Random, mean: float) -> timedelta:
    return timedelta(hours=0.05 - math.log(1.0 - rng.random()) * mean)  # never in the scanners' seconds


KINDS = ("open", "click", "conversion", "unsubscribe")
DRAWS = ("exact", "bernoulli")


def rates(treatment: bool, harmful: bool) -> dict[str, float]:
    """Per recipient: opens, clicks (openers only), conversions, unsubscribes."""
    unsubscribe = UNSUBSCRIBE_RATE * (HARM_FACTOR if harmful and treatment else 1.0)
    return {"open": OPEN_RATE, "click": OPEN_RATE * CLICK_GIVEN_OPEN, "conversion": CONVERSION_RATE,
            "unsubscribe": unsubscribe}  # fmt: skip


def who_acts(
    seed: str, group: str, emails: list[str], rate: dict[str, float], draws: str
) -> dict[str, set[str]]:
    """Which recipients of one group (AI content, or the comparison: control and holdout) of one send
    open, click, convert and unsubscribe.

    ``exact``: the stated share of the group, chosen at random among its recipients, its fraction
    rounded up or down at random (so no bias: 4.5 expected is 4 or 5 as often); the groups then
    differ by the effect and not by chance, and a test's outcome rests on the effect and the
    statistics' margin, whoever the rollout's salt puts in treatment. ``bernoulli``: each recipient
    independently, as real recipients do (the bench measures rates under that noise)."""
    rng = _rng(f"{seed}:{group}")
    ordered = sorted(emails)
    out: dict[str, set[str]] = {}
    if draws == "exact":

        def count(kind: str) -> int:
            expected = rate[kind] * len(ordered)
            return int(expected) + (rng.random() < expected - int(expected))

        openers = rng.sample(ordered, count("open"))
        out["open"] = set(openers)
        out["click"] = set(openers[: count("click")])
        for kind in ("conversion", "unsubscribe"):
            out[kind] = set(rng.sample(ordered, count(kind)))
        return out
    u = {email: [rng.random() for _ in KINDS] for email in ordered}
    out["open"] = {e for e in ordered if u[e][0] < rate["open"]}
    out["click"] = {e for e in out["open"] if u[e][1] < rate["click"] / rate["open"]}
    for k, kind in ((2, "conversion"), (3, "unsubscribe")):
        out[kind] = {e for e in ordered if u[e][k] < rate[kind]}
    return out


def events_of(seed: str, email: str, send_id: int, acts: dict[str, set[str]], sent_at: datetime,
              links: list[int]) -> list[RawEvent]:  # fmt: skip
    """One recipient's events, at random delays after the send: opens within hours, a click minutes
    after the open, a conversion over days, an unsubscribe within hours."""
    rng = _rng(f"{seed}:{email}")
    events: list[tuple[str, datetime, int | None, float]] = []
    opened = sent_at + _hours(rng, 5.0)
    if email in acts["open"]:
        events.append(("open", opened, None, 0.0))
    if email in acts["click"] and links:
        events.append(("click", opened + timedelta(minutes=1 + 20 * rng.random()), rng.choice(links), 0.0))
    if email in acts["conversion"]:
        events.append(("conversion", sent_at + _hours(rng, 24.0), None, round(20 + 30 * rng.random(), 2)))
    if email in acts["unsubscribe"]:
        events.append(("unsubscribe", sent_at + _hours(rng, 6.0), None, 0.0))
    return [
        RawEvent(kind=kind, send_id=send_id, link_id=link, value=value, user_agent=SIMULATED_AGENT,
                 ip=SIMULATED_IP, at=at.timestamp(), key=f"small:{send_id}:{kind}")
        for kind, at, link, value in events
    ]  # fmt: skip


def readme_setup(api: Api, contacts: int, ai: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """README steps 1-4: contacts, a segment, a template with AI content, the campaign with `ai`.
    Returns the POST /campaigns answer and the template (later weeks' campaigns use it)."""
    run = api.post("/api/v1/contacts/import?filename=contacts.csv", data=contacts_csv(contacts),
                   content_type="text/csv").get_json()  # fmt: skip
    assert run["rows_imported"] == contacts, run
    rules = {"all": [{"field": "country", "op": "in", "value": ["Germany", "United Kingdom", "France"]}]}
    segment = api.post("/api/v1/segments", json={"name": "Our readers", "rules": rules}).get_json()
    template = api.post(
        "/api/v1/templates",
        json={
            "name": "Weekly picks",
            "subject": "Picks for you",
            "layout_html": "<html><body>{{ content }}<p><a href=\"https://shop.example/all\">shop</a></p></body></html>",
            "control_html": '<p><a href="https://shop.example/best">best sellers</a></p>',
            "ai_html": "{% for r in recommendations %}<p>{{ r.name }}</p>{% endfor %}",
        },
    ).get_json()  # fmt: skip
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Weekly #1", "template_id": template["id"], "segment_id": segment["id"],
              "from_email": "shop@example.com", "ai": ai},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    return created.get_json(), template


def weekly_campaign(api: Api, week: int, template: dict[str, Any], segment_id: int, rollout_id: int) -> int:
    """A later week's newsletter: a new campaign of the series, joining the rollout."""
    created = api.post(
        "/api/v1/campaigns",
        json={"name": f"Weekly #{week}", "template_id": template["id"], "segment_id": segment_id,
              "from_email": "shop@example.com", "rollout_id": rollout_id},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    return int(created.get_json()["id"])


def send_everyone(api: Api, rt: Runtime, campaign_id: int) -> int:
    """README step 5 (the API's wave): everyone left in the audience, sent by the rq worker."""
    planned = api.post(f"/api/v1/campaigns/{campaign_id}/waves", json={})
    assert planned.status_code == 202, planned.get_json()
    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    return int(planned.get_json()["wave_id"])


def run_weeks(
    api: Api,
    rt: Runtime,
    *,
    contacts: int,
    weeks: int,
    harmful: bool,
    seed: int,
    ai: dict[str, Any] | None = None,
    draws: str = "exact",
    after_send: Callable[[], None] | None = None,
) -> Run:
    """The README path, then `weeks` weekly sends with a look a day, stopping once the rollout is
    rolled back or paused. `draws`: how recipients are drawn (`who_acts`)."""
    assert draws in DRAWS, draws
    result = Run(contacts=contacts, harmful=harmful, seed=seed)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    start = today - WEEK * (weeks + 1)  # the last look ends a week before the real now
    with simulated_now(start - timedelta(hours=1)):
        created, template = readme_setup(api, contacts, ai or {"holdout_percent": 5})
        result.created, result.rollout_id = created, int(created["rollout_id"])
        result.rollout_at_creation = api.get(f"/api/v1/rollouts/{result.rollout_id}").get_json()
    pending: list[RawEvent] = []
    campaign_id = int(created["id"])
    for week in range(1, weeks + 1):
        sent_at = start + WEEK * (week - 1)
        with simulated_now(sent_at):
            if week > 1:
                campaign_id = weekly_campaign(
                    api, week, template, int(created["segment_id"]), result.rollout_id
                )
            send_everyone(api, rt, campaign_id)
        if after_send is not None:
            after_send()
        events, arms = _draw(rt, campaign_id, f"{seed}:{week}", harmful, draws)
        pending += events
        result.sent_per_week.append(arms)
        pending.sort(key=lambda e: e.at)
        for day in range(1, LOOK_DAYS + 1):
            moment = sent_at + timedelta(days=day) - (timedelta(hours=1) if day == LOOK_DAYS else timedelta())
            due = [e for e in pending if e.at <= moment.timestamp()]
            pending = pending[len(due) :]
            look = _look(api, rt, result.rollout_id, week, moment, due)
            result.looks.append(look)
            if look.state in ("rolled_back", "paused"):
                return result
    return result


def _draw(rt: Runtime, campaign_id: int, seed: str, harmful: bool, draws: str) -> tuple[list[RawEvent], dict[str, int]]:  # fmt: skip
    """Every simulated event of this campaign's sends (pushed later, as their moments come), and the
    sends per arm."""
    with rt.session() as session:
        links = list(
            session.scalars(sa.select(CampaignLink.id).where(CampaignLink.campaign_id == campaign_id))
        )
        rows = session.execute(
            sa.select(Send.id, Send.arm, Send.sent_at, Contact.email)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == campaign_id, Send.state == "sent")
        ).all()
    by_arm: dict[str, list[tuple[int, datetime, str]]] = {}
    for send_id, arm, sent_at, email in rows:
        assert sent_at is not None
        at = sent_at.replace(tzinfo=UTC) if sent_at.tzinfo is None else sent_at
        by_arm.setdefault(str(arm), []).append((int(send_id), at, str(email)))
    out: list[RawEvent] = []
    for treated in (True, False):
        group = [s for arm, sends in by_arm.items() if (arm == "treatment") == treated for s in sends]
        name = "treatment" if treated else "comparison"
        acts = who_acts(seed, name, [e for _, _, e in group], rates(treated, harmful), draws)
        for send_id, at, email in group:
            out += events_of(seed, email, send_id, acts, at, links)
    return out, {arm: len(sends) for arm, sends in by_arm.items()}


def _look(api: Api, rt: Runtime, rollout_id: int, week: int, moment: datetime, due: list[RawEvent]) -> Look:
    """The events that arrived by `moment` through the tracking stream and the ingest worker, then
    the periodic evaluator at that moment; the rollout as the API shows it."""
    pipe = rt.redis.pipeline(transaction=False)
    for event in due:
        push(pipe, event)
    pipe.execute()
    with simulated_now(moment):
        ingest(rt)
        evaluate_all(now=moment)
        rollout = api.get(f"/api/v1/rollouts/{rollout_id}").get_json()
    decision = api.get(f"/api/v1/rollouts/{rollout_id}/decisions?limit=1").get_json()["decisions"][0]
    evidence = decision.get("evidence") or {}
    blocking = evidence.get("blocking") or (evidence.get("gates") or {}).get("blocking") or []
    return Look(week, moment, rollout["state"], int(rollout["stage_index"]), decision["outcome"],
                list(decision["reasons"]), list(blocking))  # fmt: skip
