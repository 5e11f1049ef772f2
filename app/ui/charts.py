"""Chart data for static/js/app.js: the engine's numbers reshaped for drawing, nothing computed anew.

Three kinds: `arm_series` (a metric per arm over time, with interval bands where the engine gives
them), `exposure` (exposure over time with the decisions marked), `funnel` (rates per arm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from campaigns.reports import ArmResult

FUNNEL_STEPS = (("sent", "sent"), ("delivered", "delivered"), ("opens", "opened"), ("clicks", "clicked"),
                ("conversions", "converted"))  # fmt: skip
ARM_ORDER = ("treatment", "control", "holdout", "excluded")


def _arm_key(arm: str) -> int:
    return ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)


def funnel_chart(results: Sequence[ArmResult]) -> dict[str, Any]:
    """Each step as a share of the arm's sent messages, so arms of different sizes compare."""
    arms = []
    for r in sorted(results, key=lambda r: _arm_key(r.arm)):
        base = r.sent or 0
        values = [(getattr(r, field) / base) if base else 0.0 for field, _ in FUNNEL_STEPS]
        counts = [getattr(r, field) for field, _ in FUNNEL_STEPS]
        arms.append({"arm": r.arm, "values": values, "counts": counts})
    return {"steps": [label for _, label in FUNNEL_STEPS], "arms": arms, "format": "pct"}
