"""Decision policy (pure): each rule of campaigns.decisions on hand-made aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from campaigns.decisions import Snapshot, decide, expected_shares
from campaigns.policy import parse_config
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
        "gates met: advancing to stage 2",
    )
    assert verdict.evidence["primary"]["lift"] == pytest.approx(0.0)
    assert verdict.evidence["srm"]["mismatch"] is False


def test_last_stage_completes() -> None:
    data = {2: {"treatment": arm(20_000, 1000), "control": arm(18_000, 900), "holdout": arm(2000, 100)}}
    verdict = decide(snapshot(data, stage_index=2))
    assert verdict.outcome == "advance" and verdict.reasons[-1] == "gates met: completing the rollout"


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
    data = healthy(n_t=1800)  # 10% of treatment sends lost: 1800 where 2000 were expected
    verdict = decide(snapshot(data))
    assert verdict.outcome == "pause" and verdict.health == ("srm",)
    assert verdict.evidence["srm"]["p_value"] < 0.001


def test_no_data_never_promotes() -> None:
    empty = {1: {"treatment": arm(0), "control": arm(0), "holdout": arm(0)}}
    verdict = decide(snapshot(empty, stages=parse_plan([{**PLAN[1], "gates": {}}, PLAN[2]]), stage_index=0))
    assert verdict.outcome == "hold"
    assert verdict.reasons[0].startswith("not enough matured data")


def test_minimum_samples_per_arm() -> None:
    small = {1: {"treatment": arm(100, 5), "control": arm(1800, 90), "holdout": arm(100, 5)}}
    assert decide(snapshot(small)).reasons[0].startswith("not enough data: 100 treatment")


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
    assert verdict.reasons[0].startswith("conversion_rate is significantly worse: lift -60.0%")


def test_gates_hold() -> None:
    data = healthy()
    verdict = decide(
        snapshot(
            data,
            stages=parse_plan([PLAN[0], {**PLAN[1], "gates": {"min_recipients_per_arm": 5000}}, PLAN[2]]),
        )
    )
    assert verdict.outcome == "hold"
    assert verdict.reasons == ("gates not met: treatment has 2000 recipients, the stage needs 5000",)


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
