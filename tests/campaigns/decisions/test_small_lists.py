"""A 3,000-contact weekly list on its sized plan (50% first): x3 unsubscribes is rolled back within
three sends, and no effect holds with a reason that says how many sends remain."""

from __future__ import annotations

import math

from campaigns.decisions import decide
from campaigns.rollout.stages import parse_plan
from campaigns.stats.rates import log_evalue_rate_ratio
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
    """Three sends, 0.9% against 0.3% rounded the comparison's way, 40 unsubscribes against 14: the
    rise is tested on the harms that matter (x1.5, x2, x3), which crosses; the full grid (x1.1 to x5)
    would not yet."""
    data = {0: {"treatment": arm(4500, 90, 40), "control": arm(4050, 81, 13), "holdout": arm(450, 9, 1)}}
    verdict = decide(snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY))
    assert verdict.outcome == "rollback", verdict.reasons
    assert "unsubscribe_rate is significantly worse" in verdict.reasons[0]
    rail = verdict.evidence["guardrails"]["unsubscribe_rate"]
    full_grid = log_evalue_rate_ratio([rail["events_treatment"]], [4500], [rail["events_control"]], [4500])
    assert rail["log_e"] >= math.log(1 / rail["alpha"]) > float(full_grid)


def test_no_effect_holds_and_says_when() -> None:
    verdict = decide(snapshot(sends(2, 1.0), stage_index=0, stages=PLAN, cadence=WEEKLY))
    assert verdict.outcome == "hold"
    assert "needs 27,000 more matured treatment recipients" in verdict.reasons[0]
    # 18 sends' worth on average; the hold, like the forecast, says when it clears in nearly every case
    assert "about 19 more weekly sends at this stage" in verdict.reasons[0]


def test_a_list_resent_every_week_is_not_a_sample_ratio_mismatch() -> None:
    """3,000 contacts split 1,465 / 1,408 / 127 by their buckets (treatment 1.3 and holdout 1.9
    standard deviations below their shares, as often happens), sent the same newsletter 20 weeks
    running. Summed over sends that split looks like broken assignment; counted once per contact
    (what the evaluation does when the test on recipients flags it) it is not, so no pause. A split
    that really is off, counted per contact, still pauses."""
    k = 20
    t, c, h = 1465 * k, 1408 * k, 127 * k
    data = {0: {"treatment": arm(t, t * 0.02, round(t * 0.003)), "control": arm(c, c * 0.02, round(c * 0.003)),
                "holdout": arm(h, h * 0.02, round(h * 0.003))}}  # fmt: skip
    summed = decide(snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY))
    assert summed.outcome == "pause" and "srm" in summed.health  # what the recipients alone say
    contacts = {0: {"treatment": 1465.0, "control": 1408.0, "holdout": 127.0}}
    verdict = decide(snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY, srm_contacts=contacts))
    assert verdict.outcome != "pause", verdict.reasons
    assert verdict.evidence["srm"]["unit"].startswith("contacts")
    broken = {0: {"treatment": 1150.0, "control": 1700.0, "holdout": 150.0}}  # a third of AI sends lost
    paused = decide(snapshot(data, stage_index=0, stages=PLAN, cadence=WEEKLY, srm_contacts=broken))
    assert paused.outcome == "pause" and "contacts (each at its first send) per stage" in paused.reasons[0]
