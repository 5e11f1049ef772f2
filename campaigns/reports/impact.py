"""What a dangerous rollout action will do, in numbers a marketer can check before confirming.

`rollout_impact` counts, over the campaigns that use a rollout and can still send, the contacts not
yet sent (queued ledger rows plus audience members without a row) and the contacts already sent per
arm. `confirmations` turns those numbers into the sentence each action's confirmation shows
("2,300 contacts not yet sent will get the control content"). Read-only; two queries per campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.rollout.stages import BASIS_POINTS
from models import Campaign, Rollout, Send

OPEN_CAMPAIGNS = ("draft", "scheduled", "sending", "paused")


@dataclass(frozen=True)
class Impact:
    unsent: int  # contacts of open campaigns not yet sent
    sent: dict[str, int] = field(default_factory=dict)  # arm -> contacts already sent
    campaigns: int = 0  # open campaigns using the rollout

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())


def rollout_impact(session: Session, rollout_id: int, now: datetime | None = None) -> Impact:
    from campaigns.sending.planner import remaining

    now = now or datetime.now(UTC)
    open_campaigns = session.scalars(
        sa.select(Campaign).where(Campaign.rollout_id == rollout_id, Campaign.status.in_(OPEN_CAMPAIGNS))
    ).all()
    unsent = 0
    for campaign in open_campaigns:
        queued = session.scalar(
            sa.select(sa.func.count()).where(Send.campaign_id == campaign.id, Send.state == "queued")
        )
        unsent += int(queued or 0) + remaining(session, campaign, now)
    sent = dict(
        session.execute(
            sa.select(Send.arm, sa.func.count())
            .join(Campaign, Campaign.id == Send.campaign_id)
            .where(Campaign.rollout_id == rollout_id, Send.state == "sent")
            .group_by(Send.arm)
        ).all()
    )
    return Impact(
        unsent=unsent, sent={str(k): int(v) for k, v in sent.items()}, campaigns=len(open_campaigns)
    )


def _contacts(n: int) -> str:
    return f"{n:,} contact{'s' if n != 1 else ''}"


def confirmations(
    rollout: Rollout, impact: Impact, to_exposure_bp: dict[str, int], events: int | None = None
) -> dict[str, str]:
    """The confirmation sentence of each dangerous action (action -> text).

    `to_exposure_bp` gives, for "advance", the exposure it leads to (BASIS_POINTS for completion);
    `events` is what the current stage gathered, so an advance on no evidence says so.
    """
    unsent = _contacts(impact.unsent)
    holdout = rollout.holdout_bp or 0
    texts = {
        "kill": (
            f"Kill switch: {unsent} not yet sent will get the control content, from now on; batches "
            "already running switch at their next chunk. Lift it later to resume. Continue?"
        ),
        "rollback": (
            f"Roll back for good? {unsent} not yet sent will get the control content, and this rollout can "
            "never send AI content again (a new rollout is needed). This cannot be undone."
        ),
        "rerandomize": (
            f"Re-randomize? Every contact gets a new bucket: treatment, control and holdout all change for "
            f"the {unsent} not yet sent. The {_contacts(impact.sent_total)} already sent keep what they got, "
            "and results before and after are not comparable."
        ),
    }
    target = to_exposure_bp.get("advance")
    if target is not None:
        share = min(target, BASIS_POINTS - holdout) / BASIS_POINTS
        expected = round(impact.unsent * share)
        where = "to completion" if target >= BASIS_POINTS else f"to {target / 100:g}% exposure"
        text = (
            f"Advance {where}? About {expected:,} of the {unsent} not yet sent will get the AI "
            f"content ({share:.0%} of eligible contacts"
            + (f"; the {holdout / 100:g}% holdout keeps the control content)." if holdout else ").")
        )
        if events == 0:
            text += " Warning: this stage has no opens, clicks or conversions yet, so there is no evidence."
        texts["advance"] = text
    return texts
