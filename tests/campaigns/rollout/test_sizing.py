"""The planner and the forecast on small cases (pure numbers)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from campaigns.rollout.forecast import forecast, lag_sends
from campaigns.rollout.gates import gate_met, sends_to_gather
from campaigns.rollout.sizing import (
    DEFAULT_BASELINES,
    Cadence,
    PlanInputs,
    events_needed,
    info_needed,
    size_plan,
    smallest_harm,
)


def inputs(per_send: int, hours: float = 168.0, conversion: float = 0.02, **kw: object) -> PlanInputs:
    rates = {**DEFAULT_BASELINES, "conversion_rate": conversion}
    return PlanInputs(Cadence("series", per_send, hours), baselines=rates, **kw)  # type: ignore[arg-type]


def test_information_grows_as_the_harm_shrinks() -> None:
    assert info_needed(0.1, 5.0) > 3.9 * info_needed(0.2, 5.0)
    assert smallest_harm(info_needed(0.2, 5.0), 5.0) == __import__("pytest").approx(0.2)
    assert events_needed(3.0, 0.005) < events_needed(2.0, 0.005)


def test_a_large_audience_starts_small_and_gates_on_information() -> None:
    plan = size_plan(inputs(100_000, 24.0, conversion=0.08))
    first = plan.stages[0]
    assert plan.mode == "learn" and first["exposure_bp"] == 100
    # the first stage's gate is the information to detect -20% with power, not a fixed 2,000
    assert 4000 < first["gates"]["min_recipients_per_arm"] < 8000
    assert [s["exposure_bp"] for s in plan.stages][-1] == 10_000


def test_the_gate_follows_the_baseline() -> None:
    rare = size_plan(inputs(100_000, 24.0, conversion=0.01)).first_requirement.recipients()
    common = size_plan(inputs(100_000, 24.0, conversion=0.08)).first_requirement.recipients()
    assert rare > 5 * common


def test_a_small_list_gets_protective_mode_in_words() -> None:
    small = inputs(3000, conversion=0.005)
    plan = size_plan(small)
    assert plan.mode == "protect" and not plan.learnable_primary
    said = forecast(small, plan.stages, plan)["words"]
    assert said.startswith(
        "on 3,000 contacts a week this rollout can catch a doubling of unsubscribes within"
    )
    assert "it cannot tell a 20% change in conversions within a year" in said
    assert "protective mode" in said
    chosen = size_plan(PlanInputs(small.cadence, baselines=small.baselines, mode="learn"))
    assert chosen.mode == "learn"
    assert "you chose to learn" in forecast(small, chosen.stages, chosen)["words"]


def test_the_forecast_walks_the_plan() -> None:
    daily = inputs(20_000, 24.0, conversion=0.03, window_hours=72.0)
    plan = size_plan(daily)
    out = forecast(daily, plan.stages, plan)
    assert lag_sends(daily) == 3
    assert out["sends_to_everyone"] is not None and out["sends_to_everyone"] <= 22
    assert out["days_to_everyone"] == out["sends_to_everyone"]
    assert out["expected_exposed_if_harmful"] > 0
    harms = [s["smallest_harm_detectable"] for s in out["stages"]]
    assert harms[0] is not None and harms[0] <= 0.2  # the first stage can see the harm that matters
    # faster events: the same plan reaches everyone sooner
    fast = inputs(20_000, 24.0, conversion=0.03, window_hours=6.0, arrival_p50_hours=2.0)
    assert forecast(fast, plan.stages, plan)["sends_to_everyone"] < out["sends_to_everyone"]


def test_a_plan_that_cannot_move_says_so() -> None:
    stuck = inputs(3000)
    stages = [
        {"kind": "percent", "exposure_bp": 100, "gates": {"min_recipients_per_arm": 2000}},
        {"kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 2000}},
    ]
    out = forecast(stuck, stages)
    assert out["stages"][0]["treatment_per_send"] == 30.0
    # 2,000 / 30 per send is 67 sends on average (each matured before the next send), but the arm's
    # size is drawn contact by contact (30 +- 5.5 a send): the forecast waits until 2,000 is met in
    # nearly every case, two standard deviations over it (2,090 / 30: 70 sends)
    assert out["sends_to_everyone"] == 70


def test_the_forecast_waits_for_the_power_to_complete() -> None:
    # a large list completes soon after reaching everyone; a small one waits at 100% for its holdout
    # to see enough unsubscribes and complaints (the completion-power check), longer than reaching it
    big = inputs(100_000, 24.0, conversion=0.03, window_hours=12.0, arrival_p50_hours=3.0)
    small = inputs(20_000, 24.0, conversion=0.03, window_hours=12.0, arrival_p50_hours=3.0)
    for case in (big, small):
        plan = size_plan(case)
        out = forecast(case, plan.stages, plan)
        assert out["sends_to_complete"] is not None
        assert out["sends_to_complete"] >= out["sends_to_everyone"]
        assert out["days_to_complete"] == out["sends_to_complete"]
    wait = {}
    for name, case in (("big", big), ("small", small)):
        plan = size_plan(case)
        out = forecast(case, plan.stages, plan)
        wait[name] = out["sends_to_complete"] - out["sends_to_everyone"]
    assert wait["small"] > wait["big"]
    # rarer complaints need a longer wait; without them (no baseline) the wait is the shortest
    rare = inputs(20_000, 24.0, conversion=0.03, window_hours=12.0, arrival_p50_hours=3.0)
    plan = size_plan(rare)
    base = forecast(rare, plan.stages, plan)["sends_to_complete"]
    rarer = PlanInputs(rare.cadence, baselines={**rare.baselines, "complaint_rate": 0.0001},
                       window_hours=12.0, arrival_p50_hours=3.0)  # fmt: skip
    assert forecast(rarer, plan.stages, plan)["sends_to_complete"] > base


def test_a_plan_stuck_below_everyone_never_completes_in_the_forecast() -> None:
    stuck = inputs(3000)
    stages = [{"kind": "percent", "exposure_bp": 100, "gates": {"min_recipients_per_arm": 100_000}},
              {"kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 2000}}]  # fmt: skip
    out = forecast(stuck, stages)
    assert out["sends_to_everyone"] is None and out["sends_to_complete"] is None


def test_the_forecast_says_how_fast_the_watch_after_100_percent_is() -> None:
    from campaigns.decisions.watch import WATCH_THETAS, watch_alpha
    from campaigns.rollout.watch_forecast import WATCH_ALPHA, WATCH_RATIOS, watch_sends

    assert math.isclose(watch_alpha(0.05, None, 5), WATCH_ALPHA) and WATCH_RATIOS == WATCH_THETAS  # alike
    big, mid = inputs(100_000, 24.0), inputs(20_000, 24.0)
    assert (watch_sends(big, 500) or 99) <= 3  # a tripling of unsubscribes caught within 3 sends
    slow, fast = watch_sends(mid, 500), watch_sends(mid, 1000)
    assert slow is not None and fast is not None and fast < slow
    plan = size_plan(mid)
    out = forecast(mid, plan.stages, plan)
    assert out["watch"]["sends_to_catch_x3_unsubscribes"] == slow
    assert out["watch"]["holdout_bp_within_3_sends"] in (1000, 2000)
    assert "5% holdout would catch a tripling of unsubscribes within" in out["words"]
    assert "holdout: within 3 sends)" in out["words"]  # and which holdout would do it within 3 sends
    plan = size_plan(big)
    assert "holdout: within 3 sends" not in forecast(big, plan.stages, plan)["words"]
    assert "never gets AI content" not in forecast(big, plan.stages, plan)["words"]
    # a larger holdout says what it costs and what the 5% one would have taken
    sized = dataclasses.replace(mid, holdout_bp=out["watch"]["holdout_bp_within_3_sends"])
    plan = size_plan(sized)
    words = forecast(sized, plan.stages, plan)["words"]
    share = f"{sized.holdout_bp / 100:g}%"
    assert f"its {share} holdout would catch a tripling of unsubscribes within" in words
    assert (
        f"({share} of the audience never gets AI content; a 5% holdout would take {slow} daily sends)"
        in words
    )


def test_the_step_to_everyone_needs_the_harm_ruled_out_with_995_power() -> None:
    from campaigns.rollout.sizing import (
        Z_FINAL,
        info_per_recipient,
        lag_sends,
        primary_threshold,
        treatment_per_send,
    )

    for per_send, rate in ((5000, 0.03), (20_000, 0.03), (100_000, 0.01)):
        case = inputs(per_send, 24.0, conversion=rate, window_hours=12.0, arrival_p50_hours=3.0)
        plan = size_plan(case)
        stages = plan.stages
        # the first stage keeps 80% power against the harm that matters (unless it is the last before the cap)
        if len(stages) > 2:
            assert stages[0]["gates"]["min_recipients_per_arm"] == plan.first_requirement.recipients()
        # before the cap, the information summed over the stages (each sending until its gate has
        # matured) detects a 20% drop with 99.5% power
        got = 0.0
        for s in stages[:-1]:
            per = treatment_per_send(case, s["exposure_bp"])
            gate = s["gates"]["min_recipients_per_arm"]
            sends = math.ceil(gate / per) + lag_sends(case) - 1 if s is not stages[-2] else gate / per
            got += info_per_recipient(rate, s["exposure_bp"]) * per * sends
        needed = info_needed(0.2, primary_threshold(case.harm_alpha, 0.2), Z_FINAL)
        assert got >= needed * 0.999
        assert needed > 2.4 * info_needed(0.2, primary_threshold(case.harm_alpha, 0.2))


def test_the_forecast_prices_the_last_step() -> None:
    small = inputs(5000, 24.0, conversion=0.03, window_hours=12.0, arrival_p50_hours=3.0)
    plan = size_plan(small)
    assert [s["exposure_bp"] for s in plan.stages] == [5000, 10_000]
    out = forecast(small, plan.stages, plan)
    eighty = [dict(plan.stages[0], gates={"min_recipients_per_arm": plan.first_requirement.recipients()}),
              plan.stages[1]]  # fmt: skip
    before = forecast(small, eighty, plan)
    assert out["sends_to_everyone"] > 2 * before["sends_to_everyone"]
    # the exposure to a harm is priced by when the harm test crosses, not by the gate: about the same
    assert out["expected_exposed_if_harmful"] == before["expected_exposed_if_harmful"]
    # a large list gathers 99.5% power on its way anyway: no longer than one more send
    big = inputs(100_000, 24.0, conversion=0.08, window_hours=12.0, arrival_p50_hours=3.0)
    plan = size_plan(big)
    assert plan.stages[-2]["gates"]["min_recipients_per_arm"] <= treatment_per_send_of(big, plan.stages[-2])


def treatment_per_send_of(case: PlanInputs, stage: dict[str, object]) -> float:
    from campaigns.rollout.sizing import treatment_per_send

    return treatment_per_send(case, int(stage["exposure_bp"]))  # type: ignore[call-overload]


def test_the_time_to_everyone_is_met_by_nearly_every_rollout_not_half_of_them() -> None:
    # 10,000 contacts a day at 50% exposure, a 20% holdout, events over three days: the gate of
    # 114,900 matured treatment recipients is 22.98 sends' worth on average. At the bare expectation
    # the forecast would be a coin toss: half the rollouts cross after 23 matured sends, half after
    # 24. Drawn contact by contact (1 in 1,000 sends failing), the forecast's sends meet the gate in
    # nearly every case, one send fewer in about half.
    rng = np.random.default_rng(3)
    daily = inputs(10_000, 24.0, window_hours=64.0, arrival_p50_hours=20.0, holdout_bp=2000)
    gate = 114_900
    stages = [
        {"kind": "percent", "exposure_bp": 5000, "gates": {"min_recipients_per_arm": gate}},
        {"kind": "percent", "exposure_bp": 10_000, "gates": {"min_recipients_per_arm": 7200}},
    ]
    to_all = forecast(daily, stages)["sends_to_everyone"]
    matured_sends = to_all - (lag_sends(daily) - 1)  # the stage's last `lag - 1` sends were maturing
    arm = rng.binomial(rng.binomial(10_000, 0.999, size=(20_000, matured_sends)), 0.5).sum(axis=1)
    assert (arm >= gate).mean() >= 0.95
    fewer = rng.binomial(rng.binomial(10_000, 0.999, size=(20_000, matured_sends - 1)), 0.5).sum(axis=1)
    assert 0.2 < (fewer >= gate).mean() < 0.8


def test_gate_met_asks_two_standard_deviations_over_the_gate() -> None:
    assert gate_met(2000 + 2 * math.sqrt(2000), 2000)
    assert not gate_met(2000 + 1.9 * math.sqrt(2000), 2000)
    assert gate_met(0.0, 0)


def test_a_hold_counts_its_sends_with_the_same_margin() -> None:
    # 27,000 more at 1,500 a send is 18 sends on average: met after 18 about half the time
    assert sends_to_gather(27_000, 1500) == 19
    assert sends_to_gather(1934, 300) == 7
    assert sends_to_gather(0, 300) == sends_to_gather(-5, 300) == 0
    assert sends_to_gather(1, 300) == 1
