"""Distinct contacts per stage and arm for the sample-ratio test (database read).

The sample-ratio test asks whether assignment is faithful to the bucket ranges. Its unit is the
contact: a list re-sent every week repeats the same contacts, whose split by bucket is drawn once, so
summing recipients over sends grows the test's statistic with every send and pauses a harmless
rollout (3,000 contacts: within 10 weekly sends in 35% of salts). Here each contact counts once, in
the stage and arm of its first send in the rollout (sent or failed; allow-listed sends left out), so
the counts grow only as new contacts arrive, each a fresh draw from its stage's shares, and the
test's e-process stays valid. The evaluator asks for them only when the test on recipients has
already flagged a mismatch (`campaigns.decisions.evaluation`), since the count reads the rollout's sends.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions.decide import decide
from campaigns.decisions.snapshot import Snapshot, Verdict
from models import Send

COUNTED_STATES = ("sent", "failed")


def first_send_counts(session: Session, rollout_id: int) -> dict[int, dict[str, float]]:
    """stage index -> arm -> contacts whose first send in the rollout was in that stage and arm."""
    first = (
        sa.select(sa.func.min(Send.id).label("id"))
        .where(Send.rollout_id == rollout_id, Send.state.in_(COUNTED_STATES), Send.forced.is_(False))
        .group_by(Send.contact_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(Send.stage_index, Send.arm, sa.func.count())
        .join(first, first.c.id == Send.id)
        .group_by(Send.stage_index, Send.arm)
    )
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for stage, arm, count in rows:
        if stage is not None:
            out[int(stage)][str(arm)] = float(count)
    return dict(out)


def decide_counting_contacts(
    session: Session, rollout_id: int, snapshot: Snapshot
) -> tuple[Verdict, Snapshot]:
    """`decide`, and when it paused on a sample-ratio mismatch of recipients, again on distinct contacts."""
    verdict = decide(snapshot)
    if "srm" in verdict.health and snapshot.srm_contacts is None:
        snapshot = dataclasses.replace(snapshot, srm_contacts=first_send_counts(session, rollout_id))
        verdict = decide(snapshot)
    return verdict, snapshot
