"""Regenerate golden.json: `python -m tests.campaigns.stats.golden_gen` (needs gbstats >= 0.8).

Expected values come from outside `campaigns.stats`: GrowthBook's gbstats `SequentialTwoSidedTTest`
for the single-stratum intervals (absolute and relative), `scipy.stats.dirichlet_multinomial` for the sequential SRM, and plain
`math` re-derivations (written here, independently) for stratified estimates and e-values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

HERE = Path(__file__).parent


def rho(alpha: float, tuning: float) -> float:
    a = -2 * math.log(alpha)
    return math.sqrt((a + math.log(a + 1)) / tuning)


def arm_var(n: float, total: float, sq: float, binary: bool) -> float:
    m = total / n
    return m * (1 - m) if binary else (sq - total * total / n) / (n - 1)


def reference(case: dict[str, Any]) -> dict[str, Any]:
    t, c, binary = case["treatment"], case["control"], case["binary"]
    alpha, tuning = case["alpha"], case["tuning_n"]
    strata = [
        (t["n"][i], t["total"][i], t["total_sq"][i], c["n"][i], c["total"][i], c["total_sq"][i])
        for i in range(len(t["n"]))
        if t["n"][i] > 0 and c["n"][i] > 0
    ]
    big_n = sum(s[0] + s[3] for s in strata)
    if big_n == 0:
        return {"status": "no_data"}
    cmh = sum(s[0] * s[3] / (s[0] + s[3]) for s in strata)  # Cochran-Mantel-Haenszel weights
    mt = mc = v = v0 = vt = vc = 0.0
    for nt, tt, qt, nc, tc, qc in strata:
        w = nt * nc / (nt + nc) / cmh
        mt += w * tt / nt
        mc += w * tc / nc
        a, b = arm_var(nt, tt, qt, binary) / nt, arm_var(nc, tc, qc, binary) / nc
        vt += w * w * a
        vc += w * w * b
        v += w * w * (a + b)
        if binary:
            p = (tt + tc) / (nt + nc)
            v0 += w * w * p * (1 - p) * (1 / nt + 1 / nc)
        else:
            v0 += w * w * (a + b)
    if v <= 0 or v0 <= 0:
        return {"status": "zero_variance"}
    r = rho(alpha, tuning)
    k = big_n * r * r + 1
    d = mt - mc
    half = math.sqrt(v * big_n) * math.sqrt(2 * k / (big_n**2 * r * r) * math.log(math.sqrt(k) / alpha))
    s = d * math.sqrt(big_n / v0)
    quad = r * r * s * s / (2 * k)
    out = {
        "status": "ok",
        "difference": d,
        "difference_low": d - half,
        "difference_high": d + half,
        "log_e_two_sided": quad - 0.5 * math.log(k),
        "log_e_increase": math.log(2)
        - 0.5 * math.log(k)
        + quad
        + math.log(stats.norm.cdf(r * s / math.sqrt(k))),
        "log_e_decrease": math.log(2)
        - 0.5 * math.log(k)
        + quad
        + math.log(stats.norm.cdf(-r * s / math.sqrt(k))),
    }
    if mc != 0:
        vr = vt / mc**2 + mt**2 * vc / mc**4
        half_r = math.sqrt(vr * big_n) * math.sqrt(
            2 * k / (big_n**2 * r * r) * math.log(math.sqrt(k) / alpha)
        )
        out.update(lift=mt / mc - 1, lift_low=mt / mc - 1 - half_r, lift_high=mt / mc - 1 + half_r)
    return out


def gbstats_reference(case: dict[str, Any]) -> dict[str, Any] | None:
    """Single stratum only: gbstats' confidence sequence, absolute and relative."""
    if len(case["treatment"]["n"]) != 1:
        return None
    from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    def stat(arm: dict[str, Any]) -> Any:
        n, total, sq = arm["n"][0], arm["total"][0], arm["total_sq"][0]
        if case["binary"]:
            return ProportionStatistic(n=int(n), sum=total)
        return SampleMeanStatistic(n=int(n), sum=total, sum_squares=sq)

    out: dict[str, Any] = {}
    for kind in ("absolute", "relative"):
        config = SequentialConfig(
            alpha=case["alpha"], sequential_tuning_parameter=case["tuning_n"], difference_type=kind
        )
        result = SequentialTwoSidedTTest(
            stat(case["control"]), stat(case["treatment"]), config
        ).compute_result()
        if result.error_message:
            return None
        out[kind] = {
            "estimate": float(result.expected),
            "low": float(result.ci[0]),
            "high": float(result.ci[1]),
        }
    return out


def arms(n: list[float], total: list[float], total_sq: list[float] | None = None) -> dict[str, Any]:
    return {"n": n, "total": total, "total_sq": total_sq if total_sq is not None else total}


CASES: list[dict[str, Any]] = [
    {"name": "conversions 5% vs 4%", "treatment": arms([10000], [500]), "control": arms([10000], [400]),
     "binary": True, "alpha": 0.05, "tuning_n": 10000},
    {"name": "few events, not significant", "treatment": arms([1000], [30]), "control": arms([1000], [20]),
     "binary": True, "alpha": 0.05, "tuning_n": 5000},
    {"name": "A/A identical", "treatment": arms([5000], [100]), "control": arms([5000], [100]),
     "binary": True, "alpha": 0.05, "tuning_n": 20000},
    {"name": "unsubscribes 3x, strict alpha", "treatment": arms([4000], [24]), "control": arms([40000], [80]),
     "binary": True, "alpha": 0.01, "tuning_n": 20000},
    {"name": "revenue per recipient", "treatment": arms([2000], [5000.0], [120000.0]),
     "control": arms([2100], [4500.0], [100000.0]), "binary": False, "alpha": 0.05, "tuning_n": 5000},
    {"name": "two stages, shares change", "treatment": arms([500, 5000], [40, 260]),
     "control": arms([49500, 45000], [2475, 2700]), "binary": True, "alpha": 0.05, "tuning_n": 20000},
    {"name": "stage without treatment is left out", "treatment": arms([0, 3000], [0, 150]),
     "control": arms([10000, 7000], [480, 350]), "binary": True, "alpha": 0.05, "tuning_n": 20000},
    {"name": "no events at all", "treatment": arms([1000], [0]), "control": arms([1000], [0]),
     "binary": True, "alpha": 0.05, "tuning_n": 5000},
    {"name": "no recipients", "treatment": arms([0], [0]), "control": arms([1000], [10]),
     "binary": True, "alpha": 0.05, "tuning_n": 5000},
]  # fmt: skip

SRM_CASES: list[dict[str, Any]] = [  # per stage: observed recipients and expected shares per arm
    {"observed": [[5000, 4500]], "shares": [[1, 1]]},
    {"observed": [[5000, 5050]], "shares": [[1, 1]]},
    {"observed": [[450, 94050, 5000]], "shares": [[500, 9000, 500]]},
    {"observed": [[500, 94500, 5000]], "shares": [[500, 9000, 500]]},
    {"observed": [[900, 9100]], "shares": [[1000, 9000]]},
    {"observed": [[190, 18800, 1000], [900, 18100, 1000]], "shares": [[100, 9400, 500], [500, 9000, 500]]},
    {"observed": [[180, 18820, 1000], [900, 18100, 1000]], "shares": [[100, 9400, 500], [500, 9000, 500]]},
]
SRM_CONCENTRATION = 1000.0
SRM_ALPHA = 0.001


def srm_reference(case: dict[str, Any]) -> float:
    """log e-value from scipy's Dirichlet-multinomial and multinomial pmfs (the multinomial
    coefficient cancels), summed over stages: an implementation independent of campaigns.stats.srm."""
    total = 0.0
    for observed, shares in zip(case["observed"], case["shares"], strict=True):
        p = np.asarray(shares, dtype=float) / sum(shares)
        n = int(sum(observed))
        total += float(stats.dirichlet_multinomial.logpmf(observed, SRM_CONCENTRATION * p, n))
        total -= float(stats.multinomial.logpmf(observed, n, p))
    return total


def main() -> None:
    cases = []
    for case in CASES:
        cases.append({**case, "expected": reference(case), "gbstats": gbstats_reference(case)})
    srm = []
    for case in SRM_CASES:
        log_e = srm_reference(case)
        srm.append({**case, "log_e": log_e, "mismatch": bool(log_e >= math.log(1 / SRM_ALPHA))})
    (HERE / "golden.json").write_text(json.dumps({"compare": cases, "srm": srm}, indent=1) + "\n")


if __name__ == "__main__":
    main()
