"""Plan a wave: resolve the audience in SQL, drop unsendable and already-planned contacts, write the
ledger rows (state `queued`) in one INSERT ... SELECT, and name the batches the workers will send.

Writing the ledger before sending is what makes resume safe: every contact of the wave has a row, so
a resumed wave only ever works through rows that are not `sent` yet, and skips nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import demo_contacts_only, is_demo_campaign
from campaigns.audience.rules import audience_select
from campaigns.campaign_records import get_campaign
from campaigns.errors import InputError, StateError
from campaigns.rollout.service import load_spec
from campaigns.sending import local_time
from models import Campaign, Send, Wave, utcnow

# A fixed multiplicative hash spreads each wave over the whole audience instead of the oldest ids.
_SPREAD = 2_654_435_761


@dataclass(frozen=True)
class PlannedBatch:
    campaign_id: int
    wave_id: int
    batch: int
    size: int
    not_before: datetime | None = None  # local-time delivery: enqueue for this instant

    @property
    def job_id(self) -> str:
        """Deterministic: planning or resuming the same batch twice names the same job."""
        return f"send-{self.campaign_id}-{self.wave_id}-{self.batch}"


def wave_selection(
    session: Session, campaign: Campaign, limit: int | None, now: datetime, spread: bool = False
) -> sa.Select[Any]:
    """The contact ids (`contact_id`) a wave of `limit` would take now. A limit picks a slice spread
    over the whole audience (`spread` orders the same way without one)."""
    audience = campaign_audience(session, campaign, now).order_by(None).subquery()
    already = sa.exists().where(Send.campaign_id == campaign.id, Send.contact_id == audience.c.id)
    picked_query = sa.select(audience.c.id.label("contact_id")).where(~already)
    if limit is not None or spread:
        order = ((audience.c.id * _SPREAD) % 4_294_967_296, audience.c.id)
        picked_query = picked_query.order_by(*order)
    if limit is not None:
        picked_query = picked_query.limit(limit)
    return picked_query


def plan_wave(
    session: Session,
    campaign_id: int,
    limit: int | None,
    batch_size: int,
    now: datetime | None = None,
    local_hour: int | None = None,
    default_timezone: str = "UTC",
) -> tuple[Wave, list[PlannedBatch]]:
    """`local_hour`: spread the wave so each contact gets it at that hour of their own time zone."""
    now = now or utcnow()
    if local_hour is not None:
        local_time.check(local_hour, default_timezone)
    if limit is not None and limit < 1:
        raise InputError("a wave needs at least one contact", where="limit")
    campaign = session.scalar(sa.select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    if campaign is None:
        get_campaign(session, campaign_id)  # raises NotFound
        raise AssertionError
    if campaign.status in ("sent", "cancelled"):
        raise StateError(f"campaign {campaign_id} is {campaign.status}: no more waves")
    number = (
        session.scalar(sa.select(sa.func.max(Wave.number)).where(Wave.campaign_id == campaign_id)) or 0
    ) + 1
    wave = Wave(campaign_id=campaign_id, number=number, limit=limit, status="planning", started_at=now)
    if campaign.rollout_id is not None:  # the stage this wave starts in, for the record
        spec = load_spec(session, campaign.rollout_id)
        wave.stage_index, wave.exposure_bp = spec.stage_index, 0 if spec.fail_closed else spec.exposure_bp
    session.add(wave)
    session.flush()

    # The audience without its ORDER BY (a sort nobody needs inside the subquery), minus contacts
    # already in the ledger as an anti-join (NOT EXISTS; NOT IN cannot be one), hash-ordered only
    # when a limit picks a slice; the rows are numbered into batches in the same statement.
    picked = wave_selection(session, campaign, limit, now).subquery()
    position = sa.func.row_number().over(order_by=picked.c.contact_id) - 1
    rows = sa.select(
        sa.literal(campaign_id),
        picked.c.contact_id,
        sa.literal(wave.id),
        position // batch_size,
        sa.literal("queued"),
        sa.literal(now, type_=Send.__table__.c.queued_at.type),
        sa.literal(campaign.rollout_id, type_=sa.BigInteger),
    )
    result = session.execute(
        sa.insert(Send).from_select(
            ["campaign_id", "contact_id", "wave_id", "batch", "state", "queued_at", "rollout_id"], rows
        )
    )
    if local_hour is not None:  # batches re-cut by each contact's local send time
        schedule = local_time.spread(session, wave.id, batch_size, local_hour, default_timezone, now)
        counts = session.execute(
            sa.select(Send.batch, sa.func.count())
            .where(Send.wave_id == wave.id)
            .group_by(Send.batch)
            .order_by(Send.batch)
        ).all()
        batches = [
            PlannedBatch(campaign_id, wave.id, batch, size, schedule.get(batch)) for batch, size in counts
        ]
    else:
        inserted: int | None = cast(CursorResult[Any], result).rowcount
        if inserted is None or inserted < 0:  # a driver that does not report it: one indexed count
            inserted = session.scalar(sa.select(sa.func.count()).where(Send.wave_id == wave.id))
        # positions 0..n-1 numbered in one statement: every batch is full but the last
        total = max(int(inserted or 0), 0)
        batches = [
            PlannedBatch(campaign_id, wave.id, batch, min(batch_size, total - batch * batch_size))
            for batch in range((total + batch_size - 1) // batch_size)
        ]
    wave.planned = sum(b.size for b in batches)
    wave.batches = len(batches)
    wave.status = "sending" if batches else "done"
    if not batches:
        wave.finished_at = now
    campaign.status = "sending" if batches else _status_when_idle(session, campaign, now)
    return wave, batches


def campaign_audience(session: Session, campaign: Campaign, now: datetime) -> sa.Select[int]:
    """The campaign's sendable contacts; a demo campaign's are the demo's own contacts, nobody else
    (campaigns.audience.demo_scope), whatever its segment says."""
    query = audience_select(session, campaign.segment_id, now)
    if is_demo_campaign(campaign.from_email):
        query = query.where(demo_contacts_only())
    return query


def remaining(session: Session, campaign: Campaign, now: datetime) -> int:
    """Sendable contacts of the audience without a ledger row yet."""
    audience = campaign_audience(session, campaign, now).subquery()
    already = sa.select(Send.contact_id).where(Send.campaign_id == campaign.id)
    return int(session.scalar(sa.select(sa.func.count()).where(audience.c.id.not_in(already))) or 0)


def _status_when_idle(session: Session, campaign: Campaign, now: datetime) -> str:
    return "sent" if remaining(session, campaign, now) == 0 else "paused"


def finish_wave_if_done(session: Session, wave_id: int, now: datetime | None = None) -> bool:
    """Called after each batch: the last one to finish closes the wave and updates the campaign."""
    now = now or utcnow()
    wave = session.get(Wave, wave_id)
    if wave is None or wave.status == "done":
        return False
    # one open row is enough, found through the (campaign, state) index: counting them read every
    # row of the wave after every batch
    open_row = session.scalar(
        sa.select(Send.id)
        .where(
            Send.campaign_id == wave.campaign_id,
            Send.state.in_(("queued", "sending")),
            Send.wave_id == wave_id,
        )
        .limit(1)
        .with_hint(Send, "INDEXED BY ix_sends_campaign_state", dialect_name="sqlite")  # no stats there
    )
    if open_row is not None:
        return False
    wave.status, wave.finished_at = "done", now
    campaign = session.get(Campaign, wave.campaign_id)
    # a flow step's hidden campaign stays `sending` while its flow lives (campaigns.flows)
    if campaign is not None and campaign.status == "sending" and campaign.kind == "campaign":
        still_sending = session.scalar(
            sa.select(sa.func.count()).where(
                Wave.campaign_id == campaign.id, Wave.status.in_(("planning", "sending")), Wave.id != wave_id
            )
        )
        if not still_sending:
            campaign.status = _status_when_idle(session, campaign, now)
    return True


def open_batches(session: Session, wave_id: int) -> list[PlannedBatch]:
    """Batches of a wave that still have unsent rows: what a resume must (re-)enqueue."""
    wave = session.get(Wave, wave_id)
    if wave is None:
        return []
    # when its first row is due: now if any row has no `not_before` (a batch deferred in part, to
    # quiet hours' end or by a recipient's backoff, comes back for the rest by itself)
    due = sa.case(
        (sa.func.count() > sa.func.count(Send.not_before), sa.null()), else_=sa.func.min(Send.not_before)
    )
    rows = session.execute(
        sa.select(Send.batch, sa.func.count(), due)
        .where(Send.wave_id == wave_id, Send.state.in_(("queued", "sending")))
        .group_by(Send.batch)
        .order_by(Send.batch)
    ).all()
    return [PlannedBatch(wave.campaign_id, wave_id, batch, size, at) for batch, size, at in rows]


def cancel_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    if campaign.status in ("sent", "cancelled"):
        raise StateError(f"campaign {campaign_id} is {campaign.status} already")
    campaign.status = "cancelled"
    # Nothing queued goes out any more; rows a worker is sending right now finish as they are.
    session.execute(
        sa.update(Send)
        .where(Send.campaign_id == campaign_id, Send.state == "queued")
        .values(state="skipped", error="campaign cancelled")
        .execution_options(synchronize_session=False)
    )
    for wave_id in session.scalars(
        sa.select(Wave.id).where(Wave.campaign_id == campaign_id, Wave.status.in_(("planning", "sending")))
    ).all():
        finish_wave_if_done(session, wave_id)
    return campaign
