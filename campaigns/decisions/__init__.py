"""What an evaluation concludes (pure): hold, advance, exclude a segment, roll back or pause.

- `snapshot`: the evidence an evaluation sees (aggregates, matured per metric, per report segment)
- `decide`: the order of checks and the verdict
- `segments`: per-segment harm tests with the multiplicity accounted for
- `power`: no completion on noise (could the tests have seen the harm that matters?); `completion`
  asks it for the state machine
- `watch`: a completed rollout's guardrails against the holdout (`watched` reads its periods)
- `explain`: every decision in one sentence a marketer understands
"""

from campaigns.decisions.decide import decide, gate_observation
from campaigns.decisions.snapshot import (
    COMPARISON_ARMS,
    RANDOMIZED_ARMS,
    Evidence,
    Snapshot,
    StageArms,
    Triple,
    Verdict,
    expected_shares,
)

__all__ = [
    "COMPARISON_ARMS",
    "RANDOMIZED_ARMS",
    "Evidence",
    "Snapshot",
    "StageArms",
    "Triple",
    "Verdict",
    "decide",
    "expected_shares",
    "gate_observation",
]
