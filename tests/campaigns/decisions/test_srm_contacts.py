"""The sample-ratio test counted per contact: each contact once, at its first send in the rollout."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.decisions.srm_contacts import decide_counting_contacts, first_send_counts
from campaigns.rollout.changes import create_rollout
from models import Send
from tests.campaigns.decisions.test_decide import arm, snapshot
from tests.campaigns.decisions.test_small_lists import PLAN, WEEKLY
from tests.factories import add_campaign, add_contacts, add_template


def _send(campaign_id: int, contact_id: int, rollout_id: int, stage: int, arm_name: str, **kw: object) -> dict[str, object]:  # fmt: skip
    return {"campaign_id": campaign_id, "contact_id": contact_id, "rollout_id": rollout_id, "stage_index": stage,
            "arm": arm_name, "state": "sent", **kw}  # fmt: skip


def test_each_contact_counts_once_at_its_first_send(session: Session) -> None:
    contacts = add_contacts(session, 6)
    template = add_template(session)
    rollout = create_rollout(session, "weekly", "owner@example.com")
    week1, week2 = (add_campaign(session, template.id, name=f"Week {w}") for w in (1, 2))
    a, b, c, d, e, f = contacts
    rows = [
        _send(week1.id, a, rollout.id, 0, "treatment"), _send(week2.id, a, rollout.id, 1, "treatment"),
        _send(week1.id, b, rollout.id, 0, "control"), _send(week2.id, b, rollout.id, 1, "control"),
        _send(week1.id, c, rollout.id, 0, "holdout", state="failed"),
        _send(week1.id, d, rollout.id, 0, "treatment", forced=True),  # allow-listed: not randomized
        _send(week1.id, e, rollout.id, 0, "control", state="skipped"),  # never sent
        _send(week2.id, e, rollout.id, 1, "treatment"),  # so its first send is week 2's, at stage 1
        _send(week2.id, f, None, None, "control"),  # another rollout's (none): not counted
    ]  # fmt: skip
    session.execute(
        sa.insert(Send), [{k: v for k, v in r.items() if v is not None or k != "rollout_id"} for r in rows]
    )
    session.commit()
    assert first_send_counts(session, rollout.id) == {
        0: {"treatment": 1.0, "control": 1.0, "holdout": 1.0},
        1: {"treatment": 1.0},
    }


def test_a_re_sent_list_is_recounted_before_a_pause(session: Session) -> None:
    contacts = add_contacts(session, 60)
    template = add_template(session)
    rollout = create_rollout(session, "weekly", "owner@example.com")
    weeks = [add_campaign(session, template.id, name=f"Week {w}") for w in range(2)]
    split = ["treatment"] * 26 + ["control"] * 31 + ["holdout"] * 3  # 43% for a 50% share: chance, at 60
    session.execute(
        sa.insert(Send),
        [_send(w.id, c, rollout.id, 0, a) for w in weeks for c, a in zip(contacts, split, strict=True)],
    )
    session.commit()
    k = 4000  # the same 60 contacts' split, as if summed over thousands of sends: looks broken
    data = {0: {"treatment": arm(26 * k), "control": arm(31 * k), "holdout": arm(3 * k)}}
    verdict, snap = decide_counting_contacts(
        session, rollout.id, snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY)
    )
    assert snap.srm_contacts == {0: {"treatment": 26.0, "control": 31.0, "holdout": 3.0}}
    assert verdict.outcome != "pause" and verdict.evidence["srm"]["unit"].startswith("contacts")
