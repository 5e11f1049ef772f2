"""Sample-ratio mismatch, sequentially: are the arms' recipient counts what the bucket ranges promise?

A mismatch means assignment or delivery is broken for one arm (sends lost, a filter applied to one
arm only, a bucketing bug), so every metric comparison is suspect: it blocks every decision.

A chi-square test repeated after every wave is not valid under continuous monitoring (an A/A rollout
paused falsely about 1% of the time). Instead, the Bayes factor of a Dirichlet-multinomial mixture
against the expected shares (Lindon & Malek 2022, "Anytime-valid inference for multinomial count
data"): for counts ``x`` with expected shares ``p`` and prior ``Dirichlet(c p)``,

    BF = Gamma(c) / Gamma(c + n) * prod_i Gamma(c p_i + x_i) / Gamma(c p_i) / prod_i p_i^x_i

is a nonnegative martingale with mean 1 under the expected shares, so pausing when it reaches
``1 / alpha`` is valid at every look. Stages have different shares; each stage's factor is a
martingale over its own recipients, and the stages follow one another, so their product is the
rollout's e-process: evidence accumulates across stages instead of starting again at each.
``SRM_ALPHA`` = 0.001 bounds an A/A rollout's false pauses over its whole life by 0.1%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

SRM_ALPHA = 0.001
SRM_P = SRM_ALPHA  # kept for callers of the chi-square era
CONCENTRATION = 1_000.0  # prior "pseudo recipients": tight around the expected shares

FloatArray = npt.NDArray[np.float64]


def log_bayes_factor(
    observed: npt.ArrayLike, shares: npt.ArrayLike, concentration: float = CONCENTRATION
) -> FloatArray:
    """log BF per stage; last axis = arms, leading axes broadcast. Arms with share 0 and recipients:
    +inf (certain mismatch); arms with share 0 and none are ignored."""
    x = np.asarray(observed, dtype=np.float64)
    p = np.asarray(shares, dtype=np.float64)
    p = p / np.where(p.sum(axis=-1, keepdims=True) > 0, p.sum(axis=-1, keepdims=True), 1.0)
    p = np.broadcast_to(p, x.shape)
    present = p > 0
    a = np.where(present, concentration * p, 1.0)
    n = x.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(present, gammaln(a + x) - gammaln(a) - x * np.log(np.where(present, p, 1.0)), 0.0)
    out = gammaln(concentration) - gammaln(concentration + n) + terms.sum(axis=-1)
    impossible = ((~present) & (x > 0)).any(axis=-1)
    return np.asarray(np.where(impossible, np.inf, np.where(n > 0, out, 0.0)), dtype=np.float64)


@dataclass(frozen=True)
class SrmResult:
    status: str  # "ok" | "no_data"
    observed: tuple[tuple[float, ...], ...]  # per stage, per arm
    expected: tuple[tuple[float, ...], ...]  # per stage, per arm: recipients the shares promise
    log_e: float  # summed over stages
    alpha: float = SRM_ALPHA

    @property
    def p_value(self) -> float:
        """The anytime-valid p-value 1 / e (capped at 1)."""
        return 1.0 if self.log_e <= 0 else math.exp(-self.log_e)

    @property
    def threshold(self) -> float:
        return self.alpha

    @property
    def mismatch(self) -> bool:
        return self.status == "ok" and self.log_e >= math.log(1.0 / self.alpha)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not math.isfinite(self.log_e):
            out["log_e"] = None
        return {**out, "p_value": self.p_value, "mismatch": self.mismatch}


def _per_stage(values: Sequence[Sequence[float]] | Sequence[float]) -> list[list[float]]:
    """A list of per-stage lists; a flat list is one stage."""
    if values and all(isinstance(v, Sequence) for v in values):
        return [[float(x) for x in v] for v in values]  # type: ignore[union-attr]
    return [[float(v) for v in values]]  # type: ignore[arg-type]


def srm_test(
    observed: Sequence[Sequence[float]] | Sequence[float],
    expected_shares: Sequence[Sequence[float]] | Sequence[float],
    alpha: float = SRM_ALPHA,
    concentration: float = CONCENTRATION,
) -> SrmResult:
    """Sequential test over stages: `observed[s][arm]` recipients and `expected_shares[s][arm]` (any
    positive scale) per randomized stage. A flat list is one stage."""
    obs, shares = _per_stage(observed), _per_stage(expected_shares)
    if len(obs) != len(shares) or any(len(o) != len(s) for o, s in zip(obs, shares, strict=True)):
        raise ValueError("one expected share per observed count, one share list per stage")
    expected = []
    for o, s in zip(obs, shares, strict=True):
        total, share_sum = sum(o), sum(s)
        expected.append(tuple(total * x / share_sum if share_sum > 0 else 0.0 for x in s))
    usable = [
        i for i, (o, s) in enumerate(zip(obs, shares, strict=True)) if sum(o) > 0 and sum(1 for x in s if x > 0) >= 1
    ]  # fmt: skip
    if not usable:
        return SrmResult("no_data", tuple(map(tuple, obs)), tuple(expected), 0.0, alpha)
    log_e = float(sum(float(log_bayes_factor(obs[i], shares[i], concentration)) for i in usable))
    return SrmResult("ok", tuple(map(tuple, obs)), tuple(expected), log_e, alpha)
