"""Decision policy (pure): each rule of campaigns.decisions on hand-made aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from campaigns.decisions import Snapshot, decide, expected_shares
from campaigns.decisions.policy import parse_config
from campaigns.rollout.stages import parse_plan

NOW = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
GATES = {"min_recipients_per_arm": 1000, "min_duration_hours": 0}
PLAN = [
    {"name": "internal", "kind": "internal", "exposure_bp": 0},
    {"name": "5%", "kind": "percent", "exposure_bp": 500, "gates": GATES},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": GATES},
]


def arm(sent: float, conversion: float = 0, unsubscribe: float = 0, complaint: float = 0, failed: float = 0,
        **extra: tuple[float, float, float]) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    return {
        "sent": (sent, sent, sent),
        "failed": (failed, failed, failed),
        "conversion": (conversion, conversion, conversion),
        "unsubscribe": (unsubscribe, unsubscribe, unsubscribe),
        "complaint": (complaint, complaint, complaint),
        **extra,
    }


def snapshot(
    data: dict[int, Any], stage_index: int = 1, guardrails: dict[str, Any] | None = None, **kw: Any
) -> Snapshot:
    fields: dict[str, Any] = {
        "rollout_id": 1,
        "state": "ramping",
        "killed": False,
        "stage_index": stage_index,
        "stages": parse_plan(PLAN),
        "holdout_bp": 500,
        "config": parse_config("conversion_rate", guardrails or {}),
        "data": data,
        "now": NOW,
        "stage_started_at": NOW - timedelta(days=2),
        "last_send_at": NOW - timedelta(hours=1),
        "last_event_at": NOW - timedelta(minutes=5),
        "first_send_at": NOW - timedelta(days=2),
    }
    fields.update(kw)
    return Snapshot(**fields)


def healthy(conv_t: float = 100, unsub_t: float = 4, n_t: float = 2000) -> dict[int, Any]:
    """Stage 1 (5% treatment, 5% holdout, 90% control) with 2000 treatment recipients."""
    return {
        1: {
            "treatment": arm(n_t, conv_t, unsub_t),
            "control": arm(36_000, 1800, 72),
            "holdout": arm(2000, 100, 4),
        }
    }


def test_expected_shares_follow_the_bucket_ranges() -> None:
    assert expected_shares(500, 500) == {"treatment": 500.0, "control": 9000.0, "holdout": 500.0}
    assert expected_shares(10_000, 500) == {"treatment": 9500.0, "control": 0.0, "holdout": 500.0}


def test_advance_when_gates_pass_and_primary_not_worse() -> None:
    verdict = decide(snapshot(healthy()))
    assert verdict.outcome == "advance"
    assert verdict.reasons == (
        "conversion_rate is not significantly worse",
        "gates met on matured recipients: advancing to stage 2",
    )
    assert verdict.evidence["primary"]["lift"] == pytest.approx(0.0)
    assert verdict.evidence["srm"]["mismatch"] is False


def powered(n: float, rate: float = 0.05) -> dict[str, tuple[float, float, float]]:
    """An arm whose guardrails have the power to see the harm that matters (no completion on noise)."""
    x, u, c, k = n * rate, n * 0.01, n * 0.005, n * 0.2
    return arm(n, x, u, c, click=(k, k, k))


def test_last_stage_completes() -> None:
    data = {2: {"treatment": powered(20_000), "control": powered(18_000), "holdout": powered(2000)}}
    verdict = decide(snapshot(data, stage_index=2))
    assert (
        verdict.outcome == "advance"
        and verdict.reasons[-1] == "gates met on matured recipients: completing the rollout"
    )


def test_not_live_holds() -> None:
    assert decide(snapshot(healthy(), state="paused")).outcome == "hold"
    assert decide(snapshot(healthy(), killed=True)).reasons == ("the rollout is killed: nothing to decide",)


def test_stale_data_pauses() -> None:
    verdict = decide(snapshot(healthy(), last_event_at=NOW - timedelta(hours=30)))
    assert verdict.outcome == "pause" and verdict.health == ("stale",)
    # nothing sent since the last event: quiet, not stale
    assert (
        decide(
            snapshot(
                healthy(), last_send_at=NOW - timedelta(hours=31), last_event_at=NOW - timedelta(hours=30)
            )
        ).outcome
        == "advance"
    )


def test_sample_ratio_mismatch_blocks_everything() -> None:
    data = healthy(n_t=1600)  # 20% of treatment sends lost: 1600 where 2000 were expected
    verdict = decide(snapshot(data))
    assert verdict.outcome == "pause" and verdict.health == ("srm",)
    assert verdict.evidence["srm"]["p_value"] < 0.001
    # 10% lost in one stage of 40,000 is not yet enough evidence for the sequential test
    assert decide(snapshot(healthy(n_t=1800))).outcome == "advance"


def test_no_data_never_promotes() -> None:
    empty = {1: {"treatment": arm(0), "control": arm(0), "holdout": arm(0)}}
    verdict = decide(snapshot(empty, stages=parse_plan([{**PLAN[1], "gates": {}}, PLAN[2]]), stage_index=0))
    assert verdict.outcome == "hold"
    assert verdict.reasons[0].startswith("not enough matured data")


def test_minimum_samples_per_arm() -> None:
    small = {1: {"treatment": arm(100, 5), "control": arm(1800, 90), "holdout": arm(100, 5)}}
    # the hold names the gate that blocks (the stage's 1,000, not the 200 minimum) and what is missing
    assert (
        decide(snapshot(small))
        .reasons[0]
        .startswith(
            "not enough matured data: waiting for the 5% stage's gate: needs 900 more matured treatment"
        )
    )


def test_guardrail_significantly_worse_rolls_back() -> None:
    verdict = decide(snapshot(healthy(unsub_t=20)))  # 1% against 0.2%: 5x unsubscribes
    assert verdict.outcome == "rollback"
    assert verdict.health == ("guardrail:unsubscribe_rate",)
    assert verdict.reasons[0].startswith("unsubscribe_rate is significantly worse")


def test_cap_broken_rolls_back() -> None:
    data = healthy()
    data[1]["treatment"] = arm(2000, 100, 4, complaint=12)  # 0.6% complaints, cap 0.1%
    verdict = decide(snapshot(data, guardrails={"complaint_rate": {"cap": 0.001}}))
    assert verdict.outcome == "rollback" and "cap:complaint_rate" in verdict.health


def test_render_p95_cap() -> None:
    data = healthy()
    data[1]["treatment"] = {
        **data[1]["treatment"],
        "render_ms_le_50": (1800, 1800, 1800),
        "render_ms_le_1000": (200, 200, 200),
    }
    verdict = decide(snapshot(data, guardrails={"render_p95_ms": 300}))
    assert verdict.outcome == "rollback"
    assert verdict.evidence["caps"]["render_p95_ms"]["p95_ms"] == 1000
    assert decide(snapshot(data, guardrails={"render_p95_ms": 1500})).outcome == "advance"


def test_primary_significantly_worse_rolls_back() -> None:
    verdict = decide(snapshot(healthy(conv_t=40)))  # 2% against 5%
    assert verdict.outcome == "rollback"
    # the early test on the events arrived so far sees it first
    assert verdict.reasons[0] == (
        "conversion_rate is significantly worse on the events arrived so far: 2.000% in treatment "
        "against 5.000% in comparison"
    )
    # on matured recipients alone (no early evidence beyond them), the lift test says it too
    matured = decide(
        snapshot(healthy(conv_t=40), matured={72.0: healthy(conv_t=40), 24.0: healthy(conv_t=40)})
    )
    assert matured.outcome == "rollback"


def test_the_early_test_sees_harm_before_maturation() -> None:
    everything = healthy(conv_t=40)
    verdict = decide(snapshot(everything, matured={72.0: {}, 24.0: everything}))
    assert verdict.outcome == "rollback" and "events arrived so far" in verdict.reasons[0]
    assert verdict.evidence["primary_early"]["worse"] is True
    assert decide(snapshot(healthy(), matured={72.0: {}, 24.0: healthy()})).outcome == "hold"


def test_gates_hold() -> None:
    data = healthy()
    verdict = decide(
        snapshot(
            data,
            stages=parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 5000}}, PLAN[2]]),
        )
    )
    assert verdict.outcome == "hold"
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("gates not met on matured recipients: waiting for the ")
    assert (
        "stage's gate: needs 3,000 more matured treatment recipients (2,000 of 5,000)" in verdict.reasons[0]
    )
    assert verdict.evidence["gates"]["blocking"][0]["missing"] == 3000


def test_policy_advance_only_when_better() -> None:
    strict = {"policy": {"advance_when": "better"}}
    assert decide(snapshot(healthy(), guardrails=strict)).outcome == "hold"
    assert decide(snapshot(healthy(conv_t=160), guardrails=strict)).outcome == "advance"  # 8% against 5%


def test_internal_stage_uses_gates_and_forced_arm_only() -> None:
    stages = parse_plan([{**PLAN[0], "gates": {"min_recipients_per_arm": 10}}, PLAN[1]])
    few = {0: {"forced": arm(5), "control": arm(500)}}
    assert decide(snapshot(few, stage_index=0, stages=stages)).outcome == "hold"
    enough = {0: {"forced": arm(12), "control": arm(500)}}
    verdict = decide(snapshot(enough, stage_index=0, stages=stages))
    assert verdict.outcome == "advance" and "srm" not in verdict.evidence


def test_guardrail_config_validation() -> None:
    from campaigns.errors import InputError

    with pytest.raises(InputError, match="unknown guardrail"):
        parse_config("conversion_rate", {"latency": 1})
    with pytest.raises(InputError) as err:
        parse_config("conversion_rate", {"policy": {"advance_when": "sometimes"}})
    assert err.value.where == "guardrails.policy.advance_when"
    cfg = parse_config("revenue_per_recipient", {"complaint_rate": 0.001, "bounce_rate": None})
    rails = {g.name: g for g in cfg.guardrails}
    assert rails["complaint_rate"].cap == 0.001 and not rails["bounce_rate"].enabled


def matured_view(data: dict[int, Any], share: float) -> dict[int, Any]:
    """The same arms with only `share` of each count matured."""
    return {
        s: {a: {m: tuple(v * share for v in t) for m, t in metrics.items()} for a, metrics in arms.items()}
        for s, arms in data.items()
    }


def test_immature_recipients_neither_meet_a_gate_nor_dilute_a_rate() -> None:
    data = healthy()
    # everything was mailed a minute ago: nothing has matured for any window
    fresh = decide(
        snapshot(data, matured={24.0: {}, 72.0: {}}, stage_last_send_at=NOW - timedelta(minutes=1))
    )
    assert fresh.outcome == "hold" and fresh.reasons[0].startswith("not enough matured data: waiting for")
    assert "(0 of " in fresh.reasons[0] and "already sent are maturing" in fresh.reasons[0]
    assert fresh.evidence["maturation"] == {
        "window_hours": 72.0,
        "stage_matures_at": (NOW - timedelta(minutes=1) + timedelta(hours=72)).isoformat(),
        "matured": False,
    }
    # half matured: the gate (1000 treatment recipients) is met by 1000 matured of 2000 sent, and the
    # rate is computed on the matured half only (100 conversions among 2000 matured would be 5%, here
    # the matured 1000 carry 50)
    half = matured_view(data, 0.5)
    verdict = decide(snapshot(data, matured={24.0: half, 72.0: half}))
    assert verdict.outcome == "advance"
    assert verdict.evidence["gates"]["observed"]["recipients_per_arm"]["treatment"] == 1000
    assert verdict.evidence["primary"]["n_treatment"] == 1000


def test_fast_harm_signals_act_on_immature_data_in_the_harm_direction_only() -> None:
    data = healthy(unsub_t=20)  # 1% unsubscribes against 0.2%, all of it within the last hour
    verdict = decide(snapshot(data, matured={24.0: {}, 72.0: {}}))
    assert verdict.outcome == "rollback" and verdict.health == ("guardrail:unsubscribe_rate",)
    # a primary metric that looks better on immature data says nothing: not matured, no verdict
    better = healthy(conv_t=400)
    assert decide(snapshot(better, matured={24.0: {}, 72.0: {}})).outcome == "hold"


def segment_snapshot(conv_a: float, conv_b: float, n: float = 20_000, **kw: Any) -> Snapshot:
    """Two equal report segments A and B at stage 1 (5% treatment), conversions of treatment given."""
    from campaigns.decisions import Evidence

    def stage(conv_t: float) -> dict[int, Any]:
        return {
            1: {
                "treatment": arm(n, conv_t),
                "control": arm(18 * n, 18 * n * 0.05),
                "holdout": arm(n, n * 0.05),
            }
        }

    seg_a, seg_b = stage(conv_a), stage(conv_b)
    whole = {1: {a: {m: tuple(x + y for x, y in zip(seg_a[1][a][m], seg_b[1][a][m], strict=True))
                     for m in seg_a[1][a]} for a in seg_a[1]}}  # fmt: skip
    return snapshot(whole, segments={"A": Evidence(seg_a), "B": Evidence(seg_b)}, **kw)


def test_a_segment_harmed_alone_is_excluded_and_the_rollout_goes_on() -> None:
    verdict = decide(segment_snapshot(conv_a=0.03 * 20_000, conv_b=0.055 * 20_000))  # A -40%, B +10%
    assert verdict.outcome == "exclude_segment" and verdict.evidence["segment"] == "A"
    assert verdict.health == ("segment:A",)
    assert verdict.evidence["segments"]["A"]["worse"] and not verdict.evidence["segments"]["B"]["worse"]
    # once excluded, A's past leaves the whole-arm tests: the rest (B) advances
    after = decide(segment_snapshot(conv_a=0.03 * 20_000, conv_b=0.055 * 20_000, excluded_segments=("A",)))
    assert after.outcome == "advance" and after.evidence["excluded_segments"] == ["A"]


def test_harm_everywhere_is_a_rollback_not_an_exclusion() -> None:
    verdict = decide(segment_snapshot(conv_a=0.035 * 20_000, conv_b=0.035 * 20_000))  # -30% in both
    assert verdict.outcome == "rollback"


def test_a_segment_that_only_looks_harmed_holds_the_stage() -> None:
    # A -28% (flagged at half the alpha), B +2%: the rest is not harmed but not yet shown to differ
    # from A, and the whole is not significantly worse: never advance on it, never exclude yet
    verdict = decide(segment_snapshot(conv_a=0.036 * 4_000, conv_b=0.051 * 4_000, n=4_000))
    assert verdict.outcome == "hold" and "holding the stage" in verdict.reasons[0]
    assert verdict.evidence["segments"]["A"]["worse"] and not verdict.evidence["primary"]["worse"]


def test_the_early_test_is_centred_on_the_harm_that_matters() -> None:
    import math

    from campaigns.decisions.early import HARM_PRIMARY, primary_ratios
    from campaigns.rollout.forecast import EARLY_MIXTURE_COST
    from campaigns.stats.rates import rate_ratio_test

    thetas, weights = primary_ratios()
    assert thetas[1] == pytest.approx(1 / (1 - HARM_PRIMARY)) and sum(weights) == pytest.approx(1.0)
    assert math.isclose(EARLY_MIXTURE_COST, -math.log(weights[1]))  # the forecast prices it alike
    # a 20% drop: 500 comparison conversions against 400 in treatment, equal arms. The guardrails'
    # mixture (x1.1 to x5) does not see it at the early test's alpha; the centred one does
    args = ((500.0,), (20_000.0,), (400.0,), (20_000.0,))
    assert rate_ratio_test(*args, alpha=0.015, thetas=thetas, weights=weights).worse
    assert not rate_ratio_test(*args, alpha=0.015).worse
    # and the same counts the right way round (no harm) are not worse under either
    swapped = ((400.0,), (20_000.0,), (500.0,), (20_000.0,))
    assert not rate_ratio_test(*swapped, alpha=0.015, thetas=thetas, weights=weights).worse


def test_a_capped_guardrail_splits_its_alpha_between_its_two_tests() -> None:
    verdict = decide(snapshot(healthy(), guardrails={"complaint_rate": {"cap": 0.001}}))
    share = parse_config("conversion_rate", {}).policy.rail_alpha(5)
    assert verdict.evidence["caps"]["complaint_rate"]["alpha"] == pytest.approx(share / 2)
    assert verdict.evidence["guardrails"]["complaint_rate"]["alpha"] == pytest.approx(share / 2)
    assert verdict.evidence["guardrails"]["unsubscribe_rate"]["alpha"] == pytest.approx(share)
