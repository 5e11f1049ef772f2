"""The planner and the forecast on small cases (pure numbers)."""

from __future__ import annotations

from campaigns.rollout.forecast import forecast, lag_sends
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
    assert out["sends_to_everyone"] == 67  # 2,000 / 30 per send, each matured before the next send
