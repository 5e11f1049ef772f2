"""A send step's way into the campaign send path.

Each send step sends through a hidden campaign (`Campaign.kind == "flow_step"`), one per (flow,
version, step, generation) in `flow_step_campaigns`, where generation n is a contact's n-th entry
into the flow. So the ledger's unique (campaign, contact) key, the deterministic Message-ID, the
tracking tokens, suppression and consent checks, the journal, throttling and per-arm aggregates all
apply unchanged, and a re-entered contact gets the step again through the next generation's campaign.
The campaigns of one step share `series = "flow:<flow>:<step>"`: reports per step add them up, and an
AI step's campaigns all carry the series' rollout (campaigns.flows.ai).

Within one scheduler transaction the rows written for a campaign form one wave (`WaveBook`), cut into
batches of `batch_size`; the batches are enqueued as `send_batch_job`s after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.flows.caps import Rules
from campaigns.flows.definition import FlowDefinition, SendStep
from campaigns.rollout.assignment import spec_from_row
from campaigns.sending.planner import PlannedBatch
from models import Campaign, Flow, FlowEntry, FlowStepCampaign, Rollout, Send, Template, Wave


@dataclass
class WaveBook:
    """The waves this transaction writes ledger rows into, and how many rows each holds."""

    batch_size: int
    waves: dict[int, Wave] = field(default_factory=dict)  # campaign id -> wave
    counts: dict[int, int] = field(default_factory=dict)  # wave id -> rows
    campaigns: dict[tuple[int, int, str, int], int] = field(default_factory=dict)  # step key -> campaign
    definitions: dict[tuple[int, int], FlowDefinition] = field(default_factory=dict)  # (flow, version)
    rules: Rules = field(default_factory=Rules)  # frequency caps and quiet hours
    ai: set[int] = field(default_factory=set)  # campaigns of AI steps: their waves are scored first
    rollouts: dict[int, int | None] = field(default_factory=dict)  # campaign id -> its rollout
    _staged: list[tuple[int, int, bool]] = field(default_factory=list)  # (campaign, wave, new wave)

    def keep(self) -> None:
        self._staged.clear()

    def forget_failed(self) -> None:
        """The entry's savepoint rolled back: so did the rows (and waves) it wrote."""
        for campaign_id, wave_id, created in reversed(self._staged):
            self.counts[wave_id] -= 1
            if created:
                self.waves.pop(campaign_id, None)
                self.counts.pop(wave_id, None)
        self._staged.clear()
        self.campaigns.clear()  # one made inside the rolled-back savepoint is gone too

    def planned(self) -> list[PlannedBatch]:
        out = []
        for campaign_id, wave in self.waves.items():
            total = self.counts.get(wave.id, 0)
            wave.planned = total
            wave.batches = (total + self.batch_size - 1) // self.batch_size
            wave.status = "sending" if total else "done"
            for batch in range(wave.batches):
                size = min(self.batch_size, total - batch * self.batch_size)
                out.append(PlannedBatch(campaign_id, wave.id, batch, size))
        return out


def step_campaign(session: Session, flow: Flow, entry: FlowEntry, step: SendStep) -> int:
    """The hidden campaign of (flow, entry's version, step, entry's generation); made on first use."""
    key = (
        FlowStepCampaign.flow_id == flow.id,
        FlowStepCampaign.version == entry.version,
        FlowStepCampaign.step_id == step.id,
        FlowStepCampaign.generation == entry.generation,
    )
    found = session.scalar(sa.select(FlowStepCampaign.campaign_id).where(*key))
    if found is not None:
        return found
    if session.get(Template, step.template_id) is None:
        raise LookupError(f"step {step.id}: template {step.template_id} does not exist")
    rollout_id = None
    if step.ai_content:  # the step series' rollout: arms, stages and AI content as for a campaign
        from campaigns.flows.ai import step_rollout

        rollout_id = step_rollout(session, flow, step)
    try:
        with session.begin_nested():  # another worker may make the same one at the same time
            campaign = Campaign(
                kind="flow_step",
                name=f"{flow.name} / {step.id} (v{entry.version}, entry {entry.generation})"[:200],
                template_id=step.template_id,
                from_email=step.from_email,
                from_name=step.from_name,
                status="sending",
                series=f"flow:{flow.id}:{step.id}",
                created_by=flow.created_by,
                rollout_id=rollout_id,
            )
            session.add(campaign)
            session.flush()
            session.add(
                FlowStepCampaign(
                    flow_id=flow.id,
                    version=entry.version,
                    step_id=step.id,
                    generation=entry.generation,
                    campaign_id=campaign.id,
                )
            )
            session.flush()
            return campaign.id
    except IntegrityError:
        found = session.scalar(sa.select(FlowStepCampaign.campaign_id).where(*key))
        if found is None:
            raise
        return found


def write_send(
    session: Session,
    flow: Flow,
    entry: FlowEntry,
    step: SendStep,
    book: WaveBook,
    now: datetime,
    skipped: str = "",
) -> int:
    """One `queued` ledger row for this entry's step (`skipped` with that reason when `skipped` is
    set: a frequency cap); its id. Idempotent: a row already written for (campaign, contact) is
    returned as it is."""
    key = (flow.id, entry.version, step.id, entry.generation)
    campaign_id = book.campaigns.get(key) or step_campaign(session, flow, entry, step)
    book.campaigns[key] = campaign_id  # committed or not, it exists for the rest of this transaction
    existing = session.scalar(
        sa.select(Send.id).where(Send.campaign_id == campaign_id, Send.contact_id == entry.contact_id)
    )
    if existing is not None:
        return existing
    created = campaign_id not in book.waves
    rollout_id = rollout_of(session, book, campaign_id)
    wave = wave_of(session, book, campaign_id, now)
    position = book.counts[wave.id]
    send = Send(
        campaign_id=campaign_id,
        contact_id=entry.contact_id,
        wave_id=wave.id,
        batch=position // book.batch_size,
        state="skipped" if skipped else "queued",
        error=skipped,
        queued_at=now,
        rollout_id=rollout_id,
    )
    session.add(send)
    session.flush()
    book.counts[wave.id] = position + 1
    book._staged.append((campaign_id, wave.id, created))
    return send.id


def rollout_of(session: Session, book: WaveBook, campaign_id: int) -> int | None:
    """The rollout of the campaign's AI step (None for a plain step), looked up once per transaction;
    the campaign is then in `book.ai`, so its waves are scored before they send."""
    if campaign_id not in book.rollouts:
        book.rollouts[campaign_id] = session.scalar(
            sa.select(Campaign.rollout_id).where(Campaign.id == campaign_id)
        )
    rollout_id = book.rollouts[campaign_id]
    if rollout_id is not None:
        book.ai.add(campaign_id)
    return rollout_id


def wave_of(session: Session, book: WaveBook, campaign_id: int, now: datetime) -> Wave:
    """The wave this transaction writes the campaign's rows into; made on first use."""
    wave = book.waves.get(campaign_id)
    if wave is None:
        # the campaign row lock orders wave numbers between workers (PostgreSQL; SQLite is serialised)
        session.scalar(sa.select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())
        number = (
            session.scalar(sa.select(sa.func.max(Wave.number)).where(Wave.campaign_id == campaign_id)) or 0
        ) + 1
        wave = Wave(campaign_id=campaign_id, number=number, status="sending", started_at=now)
        rollout_id = rollout_of(session, book, campaign_id)
        if rollout_id is not None:  # the stage this wave starts in, for the record (as the planner's)
            spec = spec_from_row(session.get(Rollout, rollout_id))
            wave.stage_index, wave.exposure_bp = spec.stage_index, 0 if spec.fail_closed else spec.exposure_bp
        session.add(wave)
        session.flush()
        book.waves[campaign_id] = wave
        book.counts[wave.id] = 0
    return wave


def write_sends(
    session: Session,
    items: list[tuple[Flow, FlowEntry, SendStep]],
    book: WaveBook,
    now: datetime,
    skipped: dict[int, str] | None = None,
) -> dict[int, int]:
    """`write_send` for many entries (`skipped`: entry id -> the cap's reason): per step campaign, one
    query for the rows already written and one multi-row insert for the rest. Returns entry id -> ledger row id. The caller's savepoint
    covers them all (campaigns.flows.bulk: on any error the batch is advanced entry by entry)."""
    by_campaign: dict[int, list[FlowEntry]] = {}
    for flow, entry, step in items:
        key = (flow.id, entry.version, step.id, entry.generation)
        campaign_id = book.campaigns.get(key) or step_campaign(session, flow, entry, step)
        book.campaigns[key] = campaign_id
        by_campaign.setdefault(campaign_id, []).append(entry)
    out: dict[int, int] = {}
    for campaign_id, entries in by_campaign.items():
        contacts = [e.contact_id for e in entries]
        existing = dict(
            session.execute(
                sa.select(Send.contact_id, Send.id).where(
                    Send.campaign_id == campaign_id, Send.contact_id.in_(contacts)
                )
            ).all()
        )
        new = [e for e in entries if e.contact_id not in existing]
        if new:
            rollout_id = rollout_of(session, book, campaign_id)
            wave = wave_of(session, book, campaign_id, now)
            start = book.counts[wave.id]
            rows = [
                {
                    "campaign_id": campaign_id,
                    "contact_id": e.contact_id,
                    "wave_id": wave.id,
                    "batch": (start + i) // book.batch_size,
                    "state": "skipped" if (skipped or {}).get(e.id) else "queued",
                    "error": (skipped or {}).get(e.id, ""),
                    "queued_at": now,
                    "rollout_id": rollout_id,
                }
                for i, e in enumerate(new)
            ]
            for chunk in range(0, len(rows), 1000):
                inserted = session.execute(
                    sa.insert(Send).returning(Send.contact_id, Send.id), rows[chunk : chunk + 1000]
                ).all()
                existing.update({int(contact_id): int(send_id) for contact_id, send_id in inserted})
            book.counts[wave.id] = start + len(new)
        out.update({e.id: existing[e.contact_id] for e in entries})
    return out
