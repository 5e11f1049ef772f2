"""What a wave would send if it started now, without writing anything: how many contacts, their arms
at the rollout's current stage (the same assignment the send path runs), the segment and the stage.

The UI shows it as the confirmation before a send. Arms are assigned when each batch is sent, so a
stage change in between moves them; the preview says what the rollout decides at this moment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.campaign_records import get_campaign
from campaigns.errors import InputError
from campaigns.sending.arms import assign_batch
from campaigns.sending.planner import wave_selection
from models import Contact, Rollout, Segment, utcnow

SAMPLE = 20_000  # beyond this many contacts the arms are counted on a spread sample and scaled
ARMS = ("control", "treatment", "holdout", "excluded")


@dataclass(frozen=True)
class WavePreview:
    campaign_id: int
    contacts: int
    arms: dict[str, int] = field(default_factory=dict)  # arm -> contacts (scaled when `estimated`)
    estimated: bool = False
    segment: str = ""  # "" when the campaign goes to everyone who can be sent to
    rollout: str = ""
    stage: str = ""  # e.g. "1% (stage 2 of 6)", "" without a rollout
    status: str = ""  # the rollout's state, or "killed"


def preview_wave(
    session: Session, campaign_id: int, limit: int | None, now: datetime | None = None
) -> WavePreview:
    now = now or utcnow()
    if limit is not None and limit < 1:
        raise InputError("a wave needs at least one contact", where="limit")
    campaign = get_campaign(session, campaign_id)
    selection = wave_selection(session, campaign, limit, now).subquery()
    contacts = int(session.scalar(sa.select(sa.func.count()).select_from(selection)) or 0)
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    base = WavePreview(campaign_id, contacts, segment=segment.name if segment else "")
    if campaign.rollout_id is None:
        return WavePreview(**{**base.__dict__, "arms": {"control": contacts} if contacts else {}})
    rollout = session.get(Rollout, campaign.rollout_id)
    stages = list(rollout.stages or []) if rollout else []
    stage = ""
    if rollout is not None and stages and rollout.state not in ("draft", "completed", "rolled_back"):
        index = min(int(rollout.stage_index or 0), len(stages) - 1)
        name = str(stages[index].get("name", "")) if isinstance(stages[index], dict) else ""
        stage = (
            f"{name} (stage {index + 1} of {len(stages)})" if name else f"stage {index + 1} of {len(stages)}"
        )
    arms: Counter[str] = Counter()
    if contacts:
        sampled = wave_selection(session, campaign, min(limit or SAMPLE, SAMPLE), now, spread=True).subquery()
        rows = session.execute(
            sa.select(Contact.id, Contact.attributes, Contact.country)
            .join(sampled, sampled.c.contact_id == Contact.id)
            .order_by(Contact.id)
        ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        assignment = assign_batch(
            session, campaign.rollout_id, ids, [r[1] or {} for r in rows], [r[2] or "" for r in rows]
        )
        arms.update(str(a) for a in assignment.arms)
        if len(rows) < contacts and rows:  # scale the sample to the wave
            scaled = {arm: round(n * contacts / len(rows)) for arm, n in arms.items()}
            scaled[max(scaled, key=lambda a: scaled[a])] += contacts - sum(scaled.values())
            arms = Counter(scaled)
    return WavePreview(
        **{
            **base.__dict__,
            "arms": {arm: arms[arm] for arm in ARMS if arms.get(arm)},
            "estimated": contacts > SAMPLE,
            "rollout": rollout.name if rollout else "",
            "stage": stage,
            "status": ("killed" if rollout.killed else str(rollout.state)) if rollout else "",
        }
    )
