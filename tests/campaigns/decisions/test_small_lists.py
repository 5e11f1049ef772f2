"""A 3,000-contact weekly list on its sized plan (50% first): x3 unsubscribes is rolled back within
three sends, and no effect holds with a reason that says how many sends remain."""

from __future__ import annotations

import pytest

from campaigns.decisions import decide
from campaigns.rollout.stages import parse_plan
from tests.campaigns.decisions.test_decide import arm, snapshot

PLAN = parse_plan([
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": {"min_recipients_per_arm": 30_000}},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 2_500}},
])  # fmt: skip
WEEKLY = {"treatment_per_send": 1500.0, "comparison_per_send": 1500.0, "interval_hours": 168.0,
          "every": "weekly", "window_hours": 72.0}  # fmt: skip


def sends(k: int, unsub_factor: float) -> dict[int, object]:
    """k weekly sends of 3,000 (1,500 treatment, 1,350 control, 150 holdout), unsubscribes 0.3%."""
    t, c, h = 1500 * k, 1350 * k, 150 * k
    return {0: {"treatment": arm(t, t * 0.02, round(t * 0.003 * unsub_factor)),
                "control": arm(c, c * 0.02, round(c * 0.003)), "holdout": arm(h, h * 0.02, round(h * 0.003))}}  # fmt: skip


def test_triple_unsubscribes_is_rolled_back_within_three_sends() -> None:
    outcomes = [
        decide(snapshot(sends(k, 3.0), stage_index=0, stages=PLAN, cadence=WEEKLY)).outcome for k in (1, 2, 3)
    ]
    assert "rollback" in outcomes


def test_no_effect_holds_and_says_when() -> None:
    verdict = decide(snapshot(sends(2, 1.0), stage_index=0, stages=PLAN, cadence=WEEKLY))
    assert verdict.outcome == "hold"
    assert "needs 27,000 more matured treatment recipients" in verdict.reasons[0]
    assert "about 18 more weekly sends at this stage" in verdict.reasons[0]


@pytest.mark.xfail(
    strict=True,
    reason="defect: the sample-ratio test counts sends, not contacts. A weekly series re-sends the same "
    "contacts, whose split is fixed, so the test's statistic grows with every send: with random salts a "
    "harmless rollout on 3,000 contacts is paused for 'sample-ratio mismatch' within 3 sends in 3.9% of "
    "cases, within 10 in 35%, by send 77 (its forecast's time to everyone) in 85% (6,000: 2.5%, 33%, 72% "
    "by send 39)",
)
def test_a_list_resent_every_week_is_not_a_sample_ratio_mismatch() -> None:
    """3,000 contacts split 1,465 / 1,408 / 127 by their buckets (the salt small-lists-3000: treatment
    1.3 and holdout 1.9 standard deviations below their shares, as often happens), sent the same
    newsletter three weeks running: no sign of broken assignment, so no pause."""
    k = 3
    t, c, h = 1465 * k, 1408 * k, 127 * k
    data = {0: {"treatment": arm(t, t * 0.02, round(t * 0.003)), "control": arm(c, c * 0.02, round(c * 0.003)),
                "holdout": arm(h, h * 0.02, round(h * 0.003))}}  # fmt: skip
    verdict = decide(snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY))
    assert verdict.outcome != "pause", verdict.reasons
