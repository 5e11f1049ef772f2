"""What blocks a hold (pure): the gate, how much is missing, and when it clears at the current cadence.

Each blocking gate is a dict kept in the decision's evidence (the API, the rollout page and the alert
read it) and said in one sentence, for example "waiting for the 5% stage's gate: needs 1,934 more
matured treatment recipients (412 already sent are maturing): about 3 more weekly sends at this
stage, then 72 h to mature". The recipients gate of a percent stage is the larger of its own gate and
the policy's minimum per arm, so a hold never names the smaller of the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.decisions.snapshot import COMPARISON_ARMS, Snapshot, arm_sum
from campaigns.rollout.gates import GateObservation, sends_to_gather
from campaigns.rollout.stages import Stage

ARM_WORDS = {"treatment": "treatment", "control": "comparison (control and holdout)"}


def _sent_in_stage(snapshot: Snapshot, arm: str) -> float:
    arms = snapshot.data.get(snapshot.stage_index, {})
    names = ("treatment", "forced") if arm == "treatment" else COMPARISON_ARMS
    return arm_sum(arms, names, "sent")[0]


def blocking_gates(
    snapshot: Snapshot, observation: GateObservation, stage: Stage, matures: datetime | None
) -> list[dict[str, Any]]:
    """The recipient gates of the current (percent) stage that are not met, with what is missing."""
    policy = snapshot.config.policy
    cadence = dict(snapshot.cadence or {})
    out = []
    for arm in ("treatment", "control"):
        needs = policy.min_samples_per_arm
        gate = "the minimum of matured recipients per arm"
        if arm == "treatment" and stage.gates.min_recipients_per_arm > needs:
            needs, gate = stage.gates.min_recipients_per_arm, f"the {stage.name} stage's gate"
        have = int(observation.recipients_per_arm.get(arm, 0))
        if have >= needs:
            continue
        missing = needs - have
        maturing = max(0, int(_sent_in_stage(snapshot, arm)) - have)
        per_send = float(cadence.get("treatment_per_send") or 0.0)
        if arm == "control":
            per_send = float(cadence.get("comparison_per_send") or 0.0)
        more = None if per_send <= 0 else sends_to_gather(missing - maturing, per_send)
        out.append({
            "gate": gate, "arm": arm, "have": have, "needs": needs, "missing": missing, "maturing": maturing,
            "more_sends": more, "per_send": round(per_send, 1), "every": cadence.get("every"),
            "window_hours": cadence.get("window_hours"),
            "matures_at": matures.isoformat() if matures and matures > snapshot.now else None,
        })  # fmt: skip
    return out


def _when(block: dict[str, Any]) -> str:
    more, every = block.get("more_sends"), block.get("every") or ""
    window = block.get("window_hours")
    mature = f", then {window:g} h to mature" if window else ""
    if more is None:
        return "the cadence is not known yet, so no estimate of when it clears"
    if more == 0:
        at = block.get("matures_at")
        return "it clears when the recipients already sent mature" + (f" ({at})" if at else "")
    return f"about {more} more {every + ' ' if every else ''}send{'s' if more != 1 else ''} at this stage{mature}"


def hold_reason(blocking: list[dict[str, Any]]) -> str:
    """One sentence naming every blocking gate, how much it misses, and when it clears."""
    if not blocking:
        return "waiting for matured evidence"
    parts = []
    for b in blocking:
        maturing = f" ({b['maturing']:,} already sent are maturing)" if b["maturing"] else ""
        parts.append(
            f"waiting for {b['gate']}: needs {b['missing']:,} more matured {ARM_WORDS[b['arm']]} recipients "
            f"({b['have']:,} of {b['needs']:,}){maturing}: {_when(b)}"
        )
    return "; ".join(parts)
