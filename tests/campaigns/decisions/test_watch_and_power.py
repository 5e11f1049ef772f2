"""No completion on noise, watching after 100%, clicks as a guardrail, and decisions in one sentence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from campaigns.decisions import decide
from campaigns.decisions.explain import summary
from campaigns.decisions.policy import parse_config
from campaigns.decisions.power import primary_power, rate_power
from campaigns.errors import InputError
from campaigns.stats.ratio import ratio_lift_test
from tests.campaigns.decisions.test_decide import NOW, arm, powered, snapshot

LAST = 2


def test_completion_refused_without_power() -> None:
    # the manual plan: 386 treatment recipients, an interval from about -1,700% to +1,900%
    data = {LAST: {"treatment": arm(1000, 12, 1), "control": arm(900, 11, 1), "holdout": arm(100, 1)}}
    verdict = decide(snapshot(data, stage_index=LAST))
    assert verdict.outcome == "hold"
    assert verdict.reasons[0].startswith("not completing on noise: conversion_rate would catch a 20% drop")
    assert "completed without evidence" in verdict.reasons[0]
    assert verdict.evidence["completion"]["powered"] is False
    assert "Not completing yet" in summary(verdict.outcome, verdict.reasons, verdict.evidence)


def test_completion_with_power_and_the_powers() -> None:
    data = {LAST: {"treatment": powered(20_000), "control": powered(18_000), "holdout": powered(2000)}}
    verdict = decide(snapshot(data, stage_index=LAST))
    assert verdict.outcome == "advance"
    assert verdict.evidence["completion"]["powered"] is True
    # no click recorded at all (no tracked links): clicks are not measured, not a reason to hold
    linkless = {a: {k: v for k, v in arms.items() if k != "click"} for a, arms in data[LAST].items()}
    quiet = decide(snapshot({LAST: linkless}, stage_index=LAST))
    assert quiet.outcome == "advance" and quiet.evidence["completion"]["click_rate"]["power"] is None
    assert rate_power(20_000, 40, 20_000, 40, 2.0, 0.004) > rate_power(2000, 4, 2000, 4, 2.0, 0.004)
    assert rate_power(1000, 0, 1000, 0, 2.0, 0.004) == 0.0
    assert rate_power(50_000, 1600, 50_000, 2000, 0.8, 0.004) > 0.8  # a 20% drop in clicks is seen
    weak = ratio_lift_test([386], [10], [10], [400], [10], [10], True, alpha_harm=0.03, alpha_benefit=0.025)
    strong = ratio_lift_test([40_000], [1200], [1200], [40_000], [1200], [1200], True, alpha_harm=0.03,
                             alpha_benefit=0.025)  # fmt: skip
    assert primary_power(weak) < 0.2 < 0.8 < primary_power(strong)


def test_click_guardrail_rolls_back_a_variant_that_costs_clicks() -> None:
    def stage(clicks_t: float) -> dict[int, Any]:
        return {1: {"treatment": arm(20_000, 1000, click=(clicks_t,) * 3),
                    "control": arm(360_000, 18_000, click=(18_000.0,) * 3),
                    "holdout": arm(20_000, 1000, click=(1000.0,) * 3)}}  # fmt: skip

    data = stage(750)
    verdict = decide(snapshot(data, matured={24.0: data, 72.0: data}))
    assert verdict.outcome == "rollback"
    assert "guardrail:click_rate" in verdict.health
    assert verdict.evidence["guardrails"]["click_rate"]["harm"] == "drop"
    said = summary(verdict.outcome, verdict.reasons, {**verdict.evidence, "health": list(verdict.health)})
    assert (
        said
        == "AI content was rolled back: it made clicks worse than the control content, so everyone gets the control content again."
    )
    more = stage(1300)  # more clicks is no harm
    assert decide(snapshot(more, matured={24.0: more, 72.0: more})).outcome == "advance"
    # switched off, the same drop goes unseen (the behaviour before clicks counted)
    off = decide(snapshot(data, matured={24.0: data, 72.0: data}, guardrails={"click_rate": None}))
    assert off.outcome == "advance"
    with pytest.raises(InputError, match="click_rate has no cap"):
        parse_config("conversion_rate", {"click_rate": {"cap": 0.01}})


def watched(days: int, unsub_t: float, harm_from: int = 99) -> tuple[tuple[Any, Any], ...]:
    return tuple(
        (NOW - timedelta(days=days - k), {
            "treatment": arm(19_000, 570, unsub_t if k >= harm_from else 76, 5, click=(760.0,) * 3),
            "holdout": arm(1000, 30, 4, 0, click=(40.0,) * 3),
        })
        for k in range(days)
    )  # fmt: skip


def test_completed_rollout_keeps_watching_and_rolls_back() -> None:
    calm = decide(snapshot({}, stage_index=LAST, state="completed", watched=watched(10, 76)))
    assert calm.outcome == "hold" and calm.reasons[0].startswith("completed and watched")
    nothing_yet = decide(snapshot({}, stage_index=LAST, state="completed"))
    assert nothing_yet.outcome == "hold" and "keep watching" in nothing_yet.reasons[0]
    # x3 unsubscribes from day 8 of 10: seen from its start, not diluted by the calm days before
    harmed = decide(snapshot({}, stage_index=LAST, state="completed", watched=watched(10, 228, harm_from=8)))
    assert harmed.outcome == "rollback"
    assert harmed.health == ("guardrail:unsubscribe_rate",)
    assert harmed.reasons[0].startswith("after completion, unsubscribe_rate rose")
    assert "After reaching everyone" in summary(harmed.outcome, harmed.reasons, {**harmed.evidence,
                                                                                "health": list(harmed.health)})  # fmt: skip
    killed = decide(
        snapshot({}, stage_index=LAST, state="completed", killed=True, watched=watched(10, 228, 8))
    )
    assert killed.outcome == "hold"


@pytest.mark.parametrize("seed", range(40))
def test_lift_interval_never_below_minus_100_and_agrees_with_the_verdict(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    strata = int(rng.integers(1, 4))
    n_t = rng.integers(20, 5000, strata).astype(float)
    n_c = rng.integers(20, 50_000, strata).astype(float)
    p = rng.uniform(0.001, 0.3)
    x_t = rng.binomial(n_t.astype(int), p * rng.uniform(0, 3)).astype(float)
    x_c = rng.binomial(n_c.astype(int), p).astype(float)
    for higher in (True, False):
        test = ratio_lift_test(n_t, x_t, x_t, n_c, x_c, x_c, True, alpha_harm=0.03, alpha_benefit=0.025,
                               higher_is_better=higher)  # fmt: skip
        if test.status != "ok":
            continue
        low, high = (test.lift_low, test.lift_high) if higher else (-test.lift_high, -test.lift_low)
        assert low is not None and high is not None
        assert -1.0 <= low <= high
        if higher:
            assert test.worse == (high < 0) and test.better == (low > 0)
        else:
            assert test.worse == (low > 0) and test.better == (high < 0)


def test_the_demo_interval_stays_above_minus_100() -> None:
    test = ratio_lift_test([300], [8], [8], [6000], [117], [117], True, alpha_harm=0.03, alpha_benefit=0.025)
    assert test.lift is not None and test.lift_low is not None and test.lift_high is not None
    assert -1.0 <= test.lift_low < test.lift < test.lift_high  # the demo showed [-129.0%, +198.3%]
    more = ratio_lift_test(
        [3000], [80], [80], [60_000], [1170], [1170], True, alpha_harm=0.03, alpha_benefit=0.025
    )
    assert more.lift_low is not None and -1.0 < more.lift_low < 0
    no_events = ratio_lift_test(
        [300], [0], [0], [6000], [117], [117], True, alpha_harm=0.03, alpha_benefit=0.025
    )
    assert no_events.lift_low == -1.0


def test_the_alpha_shares_add_up_to_alpha() -> None:
    from campaigns.decisions.policy import RATE_GUARDRAILS, Policy

    policy = Policy()
    spent = policy.harm_alpha + policy.srm_alpha + len(RATE_GUARDRAILS) * policy.rail_alpha()
    assert spent == pytest.approx(policy.alpha)
    assert policy.rail_alpha(2) == pytest.approx((0.02 - 0.001) / 2)
    assert Policy(guardrail_alpha=0.01).rail_alpha(5) == 0.01
    # an SRM alpha larger than the guardrails' part leaves them half of it, never nothing
    assert Policy(srm_alpha=0.05).rail_alpha(4) == pytest.approx(0.01 / 4)


def test_the_watch_has_its_own_budget() -> None:
    from campaigns.decisions.watch import WATCH_SHARE, watch_alpha

    assert watch_alpha(0.05, None, 5) == pytest.approx(0.05 * WATCH_SHARE / 5)
    assert watch_alpha(0.05, 0.002, 5) == 0.002
