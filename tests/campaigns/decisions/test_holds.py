"""Every hold names the gate that blocks, how much is missing and when it clears."""

from __future__ import annotations

from datetime import timedelta

from campaigns.decisions import decide
from campaigns.rollout.stages import parse_plan
from tests.campaigns.decisions.test_decide import NOW, PLAN, arm, healthy, snapshot

WEEKLY = {"treatment_per_send": 300.0, "comparison_per_send": 5700.0, "interval_hours": 168.0,
          "every": "weekly", "window_hours": 72.0}  # fmt: skip


def test_the_stage_gate_says_how_many_more_sends() -> None:
    plan = parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 3000}}, PLAN[2]])
    data = {1: {"treatment": arm(1066, 53), "control": arm(19_188, 959), "holdout": arm(1066, 53)}}
    verdict = decide(snapshot(data, stages=plan, cadence=WEEKLY))
    assert verdict.outcome == "hold"
    reason = verdict.reasons[0]
    assert "waiting for the 5% stage's gate: needs 1,934 more matured treatment recipients" in reason
    assert "about 7 more weekly sends at this stage, then 72 h to mature" in reason
    block = verdict.evidence["gates"]["blocking"][0]
    assert (block["missing"], block["more_sends"], block["arm"]) == (1934, 7, "treatment")


def test_the_minimum_hold_names_the_larger_gate() -> None:
    """The reported case: 66 treatment recipients; the 2,000 gate blocks, not the 200 minimum."""
    plan = parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 2000}}, PLAN[2]])
    data = {1: {"treatment": arm(66, 2), "control": arm(1188, 24), "holdout": arm(66, 1)}}
    reason = decide(snapshot(data, stages=plan, cadence=WEEKLY)).reasons[0]
    assert reason.startswith("not enough matured data: waiting for the 5% stage's gate: needs 1,934 more")
    assert "minimum" not in reason


def test_comparison_short_is_named() -> None:
    data = {2: {"treatment": arm(150, 5), "control": arm(135, 5), "holdout": arm(15, 1)}}
    reason = decide(snapshot(data, stage_index=2, cadence=WEEKLY)).reasons[0]
    assert "needs 50 more matured comparison (control and holdout) recipients (150 of 200)" in reason


def test_recipients_already_sent_clear_it_without_another_send() -> None:
    plan = parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 3000}}, PLAN[2]])

    def stage(n: float) -> dict[int, object]:
        return {1: {"treatment": arm(n, n / 20), "control": arm(18 * n, 0.9 * n), "holdout": arm(n, n / 20)}}

    everything = stage(3000)
    matured = {72.0: stage(2500), 24.0: everything}
    verdict = decide(
        snapshot(everything, stages=plan, cadence=WEEKLY, matured=matured,
                 stage_last_send_at=NOW - timedelta(hours=10))
    )  # fmt: skip
    reason = verdict.reasons[0]
    assert "needs 500 more" in reason and "(500 already sent are maturing)" in reason
    assert "it clears when the recipients already sent mature" in reason


def test_without_a_cadence_it_says_so() -> None:
    plan = parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 3000}}, PLAN[2]])
    reason = decide(snapshot(healthy(), stages=plan)).reasons[0]
    assert "the cadence is not known yet" in reason
