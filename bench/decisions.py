"""Automatic decisions under continuous monitoring: 1,000 simulated rollouts per scenario.

Each simulated rollout is a campaign series sent in waves of ``--wave`` contacts through the plan
1% -> 5% -> 10% -> 25% -> 50% -> 100% with a 5% holdout; each stage's gate is ``--gate`` recipients
per randomized arm. After EVERY wave the real policy (`campaigns.decisions.decide`, the function the
evaluator calls, with the default `Policy`) looks at the cumulative per-stage aggregates and holds,
advances, rolls back or pauses. Waves are generated vectorized across rollouts (multinomial arms,
binomial outcomes per arm); only the decisions are a Python loop.

Baselines per recipient: conversion 4%, unsubscribe 0.2%, complaint 0.03%, bounce 0.5%, send
error 0.1%. Scenarios: A/A; harmful AI (-20% relative conversions; 3x unsubscribes); beneficial AI
(+10% conversions); sample-ratio mismatch (10% of treatment sends silently lost).

On the same streams, at the same looks, two comparators watch the primary metric:
- a naive fixed-horizon two-sided z-test at alpha = 0.05 repeated after every wave (same stratified
  estimate; what a dashboard "p < 0.05" check does), and
- GrowthBook's gbstats ``SequentialTwoSidedTTest`` (alpha 0.05, same tuning) on the pooled counts
  (gbstats does not stratify by stage), when gbstats is importable. gbstats >= 0.8 pins numpy < 2
  and pandas < 2 in its metadata, but its frequentist code runs on numpy 2 / pandas 2: install it
  with ``pip install --no-deps gbstats==0.8.0`` (0.2.x imports removed pandas APIs and fails).

Run: ``python bench/decisions.py`` (``--rollouts 200`` for a quick look; ``--events 0`` skips the
10-million-event evaluation timing). Prints tables; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaigns.decisions import Snapshot, decide
from campaigns.policy import parse_config
from campaigns.rollout.stages import parse_plan
from campaigns.stats import stratified

ARMS = ("treatment", "control", "holdout")
METRICS = ("sent", "failed", "conversion", "unsubscribe", "complaint", "bounce")
BASE = {"failed": 0.001, "conversion": 0.04, "unsubscribe": 0.002, "complaint": 0.0003, "bounce": 0.005}
EXPOSURES = (100, 500, 1000, 2500, 5000, 10_000)
HOLDOUT_BP = 500
SCENARIOS: dict[str, dict[str, float]] = {
    "A/A": {},
    "harmful: -20% conversions": {"conversion": 0.8},
    "harmful: 3x unsubscribes": {"unsubscribe": 3.0},
    "beneficial: +10% conversions": {"conversion": 1.1},
    "SRM: 10% treatment sends lost": {"lost": 0.1},
}
NOW = datetime(2024, 11, 20, tzinfo=UTC)


@dataclass
class Run:
    """One scenario's results across rollouts."""

    outcome: list[str] = field(default_factory=list)  # rolled_back | paused | completed | ramping
    stopped_exposure_bp: list[int] = field(default_factory=list)
    exposed: list[float] = field(default_factory=list)  # treatment recipients when the run ended
    ours_better: list[bool] = field(default_factory=list)
    ours_worse: list[bool] = field(default_factory=list)
    naive_better: list[bool] = field(default_factory=list)
    naive_worse: list[bool] = field(default_factory=list)
    gb_better: list[bool] = field(default_factory=list)
    gb_worse: list[bool] = field(default_factory=list)
    looks: int = 0
    seconds: float = 0.0


def gbstats_test() -> Callable[[float, float, float, float, float, float], tuple[bool, bool]] | None:
    """(n_t, x_t, n_c, x_c, alpha, tuning) -> (better, worse) with gbstats, or None when unavailable."""
    try:
        from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
        from gbstats.models.statistics import ProportionStatistic
    except Exception:  # pragma: no cover - reported in the output
        return None

    def test(
        n_t: float, x_t: float, n_c: float, x_c: float, alpha: float, tuning: float
    ) -> tuple[bool, bool]:
        if min(n_t, n_c) < 2 or x_t + x_c == 0:
            return False, False
        config = SequentialConfig(alpha=alpha, sequential_tuning_parameter=tuning, difference_type="absolute")
        result = SequentialTwoSidedTTest(
            ProportionStatistic(n=int(n_c), sum=x_c), ProportionStatistic(n=int(n_t), sum=x_t), config
        ).compute_result()
        if result.error_message:
            return False, False
        return bool(result.ci[0] > 0), bool(result.ci[1] < 0)

    return test


def simulate(name: str, effect: dict[str, float], args: argparse.Namespace, gb: Any) -> Run:
    rng = np.random.default_rng(abs(hash(name)) % 2**32 if args.seed is None else args.seed + len(name))
    plan = parse_plan(
        [{"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp,
          "gates": {"min_recipients_per_arm": args.gate}} for bp in EXPOSURES]
    )  # fmt: skip
    config = parse_config("conversion_rate", {})
    policy = config.policy
    r_count, n_stages = args.rollouts, len(EXPOSURES)
    sums = np.zeros((r_count, n_stages, len(ARMS), len(METRICS)))
    stage = np.zeros(r_count, dtype=int)
    live = np.ones(r_count, dtype=bool)
    run = Run(outcome=["ramping"] * r_count, stopped_exposure_bp=[0] * r_count, exposed=[0.0] * r_count)
    flags = {
        k: np.zeros(r_count, dtype=bool) for k in ("ours_b", "ours_w", "naive_b", "naive_w", "gb_b", "gb_w")
    }
    rates = {arm: dict(BASE) for arm in ARMS}
    for metric, factor in effect.items():
        if metric in rates["treatment"]:
            rates["treatment"][metric] = BASE[metric] * factor
    lost = effect.get("lost", 0.0)
    z = 1.959963984540054
    started = time.perf_counter()
    for _wave in range(args.max_waves):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        exposure = np.minimum(np.asarray(EXPOSURES)[stage[idx]], 10_000 - HOLDOUT_BP) / 10_000
        n_t = rng.binomial(args.wave, exposure)
        n_h = rng.binomial(args.wave - n_t, HOLDOUT_BP / 10_000 / (1 - exposure))
        counts = {
            "treatment": n_t - rng.binomial(n_t, lost),
            "control": args.wave - n_t - n_h,
            "holdout": n_h,
        }
        for a, arm in enumerate(ARMS):
            failed = rng.binomial(counts[arm], rates[arm]["failed"])
            sent = counts[arm] - failed
            sums[idx, stage[idx], a, 0] += sent
            sums[idx, stage[idx], a, 1] += failed
            for m, metric in enumerate(METRICS[2:], start=2):
                sums[idx, stage[idx], a, m] += rng.binomial(sent, rates[arm][metric])
        run.looks += idx.size
        # comparators, vectorized over the live rollouts: stratified estimate, z at every look
        n_tr, x_tr = sums[idx, :, 0, 0], sums[idx, :, 0, 2]
        n_cmp, x_cmp = sums[idx, :, 1:, 0].sum(axis=2), sums[idx, :, 1:, 2].sum(axis=2)
        est = stratified(n_tr, x_tr, x_tr, n_cmp, x_cmp, x_cmp, binary=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            zstat = np.where(est.variance > 0, est.difference / np.sqrt(est.variance), 0.0)
        enough = (n_tr.sum(axis=1) >= policy.min_samples_per_arm) & (
            n_cmp.sum(axis=1) >= policy.min_samples_per_arm
        )
        flags["naive_b"][idx] |= enough & (zstat > z)
        flags["naive_w"][idx] |= enough & (zstat < -z)
        for j, r in enumerate(idx):
            if gb is not None and enough[j]:
                better, worse = gb(
                    n_tr[j].sum(),
                    x_tr[j].sum(),
                    n_cmp[j].sum(),
                    x_cmp[j].sum(),
                    policy.alpha,
                    policy.tuning_n,
                )
                flags["gb_b"][r] |= better
                flags["gb_w"][r] |= worse
            s = int(stage[r])
            data = {
                i: {arm: {metric: (float(v), float(v), float(v)) for metric, v in zip(METRICS, sums[r, i, a], strict=True)}
                    for a, arm in enumerate(ARMS)}
                for i in range(s + 1)
            }  # fmt: skip
            verdict = decide(
                Snapshot(rollout_id=int(r), state="ramping", killed=False, stage_index=s, stages=plan,
                         holdout_bp=HOLDOUT_BP, config=config, data=data, now=NOW)
            )  # fmt: skip
            primary = verdict.evidence.get("primary") or {}
            flags["ours_b"][r] |= bool(primary.get("better"))
            flags["ours_w"][r] |= bool(primary.get("worse"))
            if verdict.outcome == "hold":
                continue
            if verdict.outcome == "advance" and s + 1 < n_stages:
                stage[r] = s + 1
                continue
            live[r] = False
            run.outcome[r] = {"advance": "completed", "rollback": "rolled_back", "pause": "paused"}[
                verdict.outcome
            ]
            run.stopped_exposure_bp[r] = EXPOSURES[s]
            run.exposed[r] = float(sums[r, :, 0, 0].sum() + sums[r, :, 0, 1].sum())
    for r in np.flatnonzero(live):
        run.stopped_exposure_bp[r] = EXPOSURES[stage[r]]
        run.exposed[r] = float(sums[r, :, 0, 0].sum() + sums[r, :, 0, 1].sum())
    run.ours_better, run.ours_worse = list(flags["ours_b"]), list(flags["ours_w"])
    run.naive_better, run.naive_worse = list(flags["naive_b"]), list(flags["naive_w"])
    run.gb_better, run.gb_worse = list(flags["gb_b"]), list(flags["gb_w"])
    run.seconds = time.perf_counter() - started
    return run


def share(values: list[bool]) -> float:
    return float(np.mean(values)) if values else 0.0


def summarize(name: str, run: Run) -> dict[str, Any]:
    outcome = np.asarray(run.outcome)
    stopped = np.asarray(run.stopped_exposure_bp)
    rolled = outcome == "rolled_back"
    wrong = rolled | np.asarray(run.ours_better)
    return {
        "scenario": name,
        "rolled_back": float(rolled.mean()),
        "rolled_back_before_25pct": float((rolled & (stopped < 2500)).mean()),
        "paused": float((outcome == "paused").mean()),
        "completed": float((outcome == "completed").mean()),
        "still_ramping": float((outcome == "ramping").mean()),
        "wrong_decisions": float(wrong.mean()),
        "median_treatment_exposed": float(statistics.median(run.exposed)),
        "median_exposed_when_rolled_back": float(statistics.median(np.asarray(run.exposed)[rolled]))
        if rolled.any()
        else None,
        "ours_better": share(run.ours_better),
        "ours_worse": share(run.ours_worse),
        "naive_better": share(run.naive_better),
        "naive_worse": share(run.naive_worse),
        "gbstats_better": share(run.gb_better),
        "gbstats_worse": share(run.gb_worse),
        "looks": run.looks,
        "seconds": round(run.seconds, 1),
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def print_tables(rows: list[dict[str, Any]], gb_available: bool) -> None:
    print("\nPolicy (campaigns.decisions.decide, default Policy), evaluated after every wave.")
    print("<25%: rolled back before reaching the 25% stage; wrong (A/A only): rolled back or primary")
    print("significantly better at some look; median exposed: treatment recipients when rolled back")
    print("(harmful scenarios) or when the run ended (others).")
    head = f"{'scenario':32} {'rollback':>8} {'<25%':>7} {'paused':>7} {'100%':>7} {'ramping':>8} {'wrong':>7} {'median exposed':>15}"
    print(head)
    print("-" * len(head))
    for r in rows:
        exposed = (
            r["median_exposed_when_rolled_back"] if r["rolled_back"] > 0.5 else r["median_treatment_exposed"]
        )
        print(
            f"{r['scenario']:32} {pct(r['rolled_back']):>8} {pct(r['rolled_back_before_25pct']):>7} {pct(r['paused']):>7} "
            f"{pct(r['completed']):>7} {pct(r['still_ramping']):>8} "
            f"{pct(r['wrong_decisions']) if r['scenario'] == 'A/A' else '-':>7} {exposed:>15,.0f}"
        )
    print("\nPrimary metric flagged at any look (same streams, same looks): significantly better / worse")
    head = f"{'scenario':32} {'ours (mixture CS)':>20} {'naive z, every wave':>22} {'gbstats sequential':>20}"
    print(head)
    print("-" * len(head))
    for r in rows:
        gb = f"{pct(r['gbstats_better'])} / {pct(r['gbstats_worse'])}" if gb_available else "not installed"
        print(
            f"{r['scenario']:32} {pct(r['ours_better']) + ' / ' + pct(r['ours_worse']):>20} "
            f"{pct(r['naive_better']) + ' / ' + pct(r['naive_worse']):>22} {gb:>20}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=50_000, help="contacts per wave")
    parser.add_argument("--gate", type=int, default=5_000, help="recipients per arm each stage needs")
    parser.add_argument("--max-waves", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20241120)
    parser.add_argument(
        "--events", type=int, default=10_000_000, help="events for the evaluation timing (0: skip)"
    )
    args = parser.parse_args()
    gb = gbstats_test()
    print(f"{args.rollouts} rollouts per scenario, waves of {args.wave:,} contacts, gate {args.gate:,} recipients/arm/stage, "
          f"stages {', '.join(f'{e / 100:g}%' for e in EXPOSURES)} (holdout {HOLDOUT_BP / 100:g}%), up to {args.max_waves} waves; "
          f"gbstats: {'available' if gb else 'NOT importable (pip install --no-deps gbstats==0.8.0)'}")  # fmt: skip
    rows = []
    for name, effect in SCENARIOS.items():
        rows.append(summarize(name, simulate(name, effect, args, gb)))
        print(f"  {name}: {rows[-1]['looks']:,} evaluations in {rows[-1]['seconds']} s", flush=True)
    print_tables(rows, gb is not None)
    by = {r["scenario"]: r for r in rows}
    checks = {
        "aa_wrong_le_5pct": by["A/A"]["wrong_decisions"] <= 0.05,
        "harmful_conv_rolled_back_before_25pct_ge_95pct": by["harmful: -20% conversions"][
            "rolled_back_before_25pct"
        ]
        >= 0.95,
        "harmful_unsub_rolled_back_before_25pct_ge_95pct": by["harmful: 3x unsubscribes"][
            "rolled_back_before_25pct"
        ]
        >= 0.95,
        "beneficial_reaches_100pct_ge_80pct": by["beneficial: +10% conversions"]["completed"] >= 0.80,
        "srm_paused_ge_99pct": by["SRM: 10% treatment sends lost"]["paused"] >= 0.99,
    }
    print("\nTargets: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in checks.items()))
    timing: dict[str, Any] = {}
    if args.events > 0:
        from bench.decisions_db import evaluation_timing

        timing = evaluation_timing(args.events)
    figures = {
        "rollouts_per_scenario": args.rollouts,
        "wave": args.wave,
        "gate": args.gate,
        "scenarios": {r["scenario"]: {k: v for k, v in r.items() if k != "scenario"} for r in rows},
        "checks": checks,
        "gbstats": gb is not None,
        **timing,
    }
    print(
        json.dumps(
            figures,
            separators=(",", ":"),
            default=lambda x: None if isinstance(x, float) and math.isnan(x) else x,
        )
    )


if __name__ == "__main__":
    main()
