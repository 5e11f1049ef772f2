"""Sample-ratio mismatch: are the arms' recipient counts what the bucket ranges promise?

A mismatch means assignment or delivery is broken for one arm (sends lost, a filter applied to one
arm only, a bucketing bug), so every metric comparison is suspect: it blocks every decision. Pearson's
chi-square test against the expected shares, flagged at p < 0.001 (the usual threshold; strict so
that looking after every wave rarely pauses a healthy rollout).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

SRM_P = 0.001


@dataclass(frozen=True)
class SrmResult:
    status: str  # "ok" | "no_data" (no recipients, or fewer than two arms expected)
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    threshold: float = SRM_P

    @property
    def mismatch(self) -> bool:
        return self.status == "ok" and self.p_value < self.threshold

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mismatch": self.mismatch}


def srm_test(
    observed: Sequence[float], expected_shares: Sequence[float], threshold: float = SRM_P
) -> SrmResult:
    """Chi-square goodness of fit; an arm with expected share 0 but recipients is a mismatch (p=0)."""
    if len(observed) != len(expected_shares):
        raise ValueError("one expected share per observed count")
    total = float(sum(observed))
    share_sum = float(sum(expected_shares))
    if total <= 0 or share_sum <= 0:
        return SrmResult("no_data", tuple(map(float, observed)), (), 0.0, 1.0, threshold)
    expected = tuple(total * s / share_sum for s in expected_shares)
    if any(e == 0 and o > 0 for o, e in zip(observed, expected, strict=True)):
        return SrmResult("ok", tuple(map(float, observed)), expected, math.inf, 0.0, threshold)
    pairs = [(float(o), e) for o, e in zip(observed, expected, strict=True) if e > 0]
    if len(pairs) < 2:
        return SrmResult("no_data", tuple(map(float, observed)), expected, 0.0, 1.0, threshold)
    chi2 = sum((o - e) ** 2 / e for o, e in pairs)
    p = float(stats.chi2.sf(chi2, len(pairs) - 1))
    return SrmResult("ok", tuple(map(float, observed)), expected, float(chi2), p, threshold)
