"""Automatic decisions under continuous monitoring, on matured evidence: simulated rollouts.

Each simulated rollout sends a wave of ``--wave`` contacts (20,000) every day through the plan
1% -> 5% -> 10% -> 25% -> 50% -> 100% with a 5% holdout. A stage advances when its treatment arm has
``--gate`` (2,000) recipients matured for conversions (72 h: a wave counts three looks after it was
sent) and the method neither rolls back nor pauses; a look after every wave; up to ``--max-waves``
(60) waves. Events arrive over three days (60%, 25%, 15%); the fast harm signals (unsubscribes,
complaints, bounces) may be read before they mature, the primary metric only on matured cohorts.
Contacts fall in two equal report segments "A" and "B".

Baselines per recipient: conversion 3%, unsubscribe 0.4%, complaint 0.03%, bounce 0.5%, send error
0.1%. Scenarios: A/A; -20% conversions; 3x unsubscribes; +10% conversions; 10% of treatment sends
silently lost; harm in one of two equal segments (A -40%, B +10% conversions).

Methods, each on its own stream (same seed: the first waves are common), same gates, same looks:
- ``mailramp``: the real policy (`campaigns.decisions.decide`, default `Policy`), with SRM,
  guardrails, per-segment exclusion and maturation;
- ``sprt_oracle``: Wald's SPRT that knows the harmful effect (-20% relative) on the same stratified
  matured sequence, at the policy's harm alpha: the floor;
- ``gbstats``: GrowthBook's ``SequentialTwoSidedTTest`` (alpha 0.05) on pooled matured counts, rolled
  back when its interval is below 0 (``pip install --no-deps gbstats==0.8.0``);
- ``naive_z``: a fixed-horizon two-sided z-test (alpha 0.05) repeated after every wave.

Run: ``python bench/decisions.py`` (``--rollouts 200`` for a quick look; ``--rollouts 0 --events
10000000`` times `evaluate()` with ten million events stored instead). Prints a table; the last
line is one JSON object: per scenario and method rolled_back, rolled_back_before_25, reached_100,
paused, segment_excluded, median_exposed, p90_exposed, and ``exposure_vs_oracle``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaigns.decisions import Evidence, Snapshot, decide
from campaigns.decisions.policy import parse_config
from campaigns.rollout.stages import parse_plan
from campaigns.stats import stratified
from campaigns.stats.lift import relative_sequence, sprt_log_lr

ARMS = ("treatment", "control", "holdout")
EVENTS = ("conversion", "unsubscribe", "complaint", "bounce")
BASE = {"failed": 0.001, "conversion": 0.03, "unsubscribe": 0.004, "complaint": 0.0003, "bounce": 0.005}
ARRIVAL = (0.6, 0.25, 0.15)  # share of a cohort's events arriving on days 1, 2, 3 after the send
EXPOSURES = (100, 500, 1000, 2500, 5000, 10_000)
HOLDOUT_BP = 500
SEGMENTS = ("A", "B")
WINDOWS = {"conversion": 72.0, "unsubscribe": 72.0, "complaint": 72.0, "bounce": 24.0}
# scenario -> per segment -> event -> factor on treatment ("lost": share of treatment sends lost)
SCENARIOS: dict[str, dict[str, dict[str, float]]] = {
    "A/A": {},
    "-20% conversions": {"A": {"conversion": 0.8}, "B": {"conversion": 0.8}},
    "3x unsubscribes": {"A": {"unsubscribe": 3.0}, "B": {"unsubscribe": 3.0}},
    "+10% conversions": {"A": {"conversion": 1.1}, "B": {"conversion": 1.1}},
    "10% treatment sends lost": {"A": {"lost": 0.1}, "B": {"lost": 0.1}},
    "harm in one segment (-40% / +10%)": {"A": {"conversion": 0.6}, "B": {"conversion": 1.1}},
}
HARM_SCENARIO = "-20% conversions"
ORACLE_EFFECT = -0.2
METHODS = ("mailramp", "sprt_oracle", "gbstats", "naive_z")
START = datetime(2024, 11, 1, tzinfo=UTC)


class Streams:
    """Cohort arrays of many rollouts: one cohort per wave."""

    def __init__(self, rollouts: int, waves: int) -> None:
        shape = (rollouts, waves, len(SEGMENTS), len(ARMS))
        self.sent = np.zeros(shape)
        self.failed = np.zeros(shape)
        self.events = np.zeros((*shape, len(EVENTS), len(ARRIVAL)))  # by arrival day
        self.stage = np.full((rollouts, waves), -1, dtype=int)

    def send_wave(self, rng: np.random.Generator, idx: np.ndarray, wave: int, stage: np.ndarray,
                  excluded: np.ndarray, effect: dict[str, dict[str, float]], size: int) -> None:  # fmt: skip
        exposure = np.minimum(np.asarray(EXPOSURES)[stage[idx]], 10_000 - HOLDOUT_BP) / 10_000
        self.stage[idx, wave] = stage[idx]
        per_segment = rng.multinomial(size, [1 / len(SEGMENTS)] * len(SEGMENTS), size=idx.size)
        for g, name in enumerate(SEGMENTS):
            seg_effect = effect.get(name, {})
            n = np.where(excluded[idx, g], 0, per_segment[:, g])  # an excluded segment leaves the rollout
            n_t = rng.binomial(n, exposure)
            n_h = rng.binomial(n - n_t, HOLDOUT_BP / 10_000 / (1 - exposure))
            counts = (n_t - rng.binomial(n_t, seg_effect.get("lost", 0.0)), n - n_t - n_h, n_h)
            for a, count in enumerate(counts):
                failed = rng.binomial(count, BASE["failed"])
                sent = count - failed
                self.sent[idx, wave, g, a] = sent
                self.failed[idx, wave, g, a] = failed
                for m, event in enumerate(EVENTS):
                    rate = BASE[event] * (seg_effect.get(event, 1.0) if a == 0 else 1.0)
                    total = rng.binomial(sent, rate)
                    first = rng.binomial(total, ARRIVAL[0])
                    second = rng.binomial(total - first, ARRIVAL[1] / (1 - ARRIVAL[0]))
                    self.events[idx, wave, g, a, m] = np.stack(
                        [first, second, total - first - second], axis=-1
                    )

    def sums(self, idx: np.ndarray, wave: int, window_hours: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(sent, failed, events) per rollout, stage, segment, arm[, event]: cohorts 0..wave as seen at the
        look after `wave` (cohort w is (wave + 1 - w) days old); only cohorts at least `window_hours` old
        when a window is given."""
        age = wave + 1 - np.arange(wave + 1)
        arrived = np.minimum(age, len(ARRIVAL))  # days of events in
        keep = np.ones(wave + 1) if window_hours is None else (age * 24 >= window_hours).astype(float)
        cum = np.cumsum(self.events[idx, : wave + 1], axis=-1)
        seen = np.take_along_axis(cum, (arrived - 1).reshape(1, -1, 1, 1, 1, 1), axis=-1)[..., 0]
        onehot = (self.stage[idx, : wave + 1, None] == np.arange(len(EXPOSURES))).astype(float) * keep[
            None, :, None
        ]
        sent = np.einsum("rws,rwga->rsga", onehot, self.sent[idx, : wave + 1])
        failed = np.einsum("rws,rwga->rsga", onehot, self.failed[idx, : wave + 1])
        events = np.einsum("rws,rwgam->rsgam", onehot, seen)
        return sent, failed, events


def _stage_arms(sent: np.ndarray, failed: np.ndarray, events: np.ndarray, upto: int, segment: int | None) -> dict[int, Any]:  # fmt: skip
    """Nested dicts for one rollout: stage -> arm -> metric -> (count, total, total_sq)."""
    out: dict[int, Any] = {}
    for s in range(upto + 1):
        arms: dict[str, dict[str, tuple[float, float, float]]] = {}
        for a, arm in enumerate(ARMS):
            if segment is None:
                n, f, ev = sent[s, :, a].sum(), failed[s, :, a].sum(), events[s, :, a].sum(axis=0)
            else:
                n, f, ev = sent[s, segment, a], failed[s, segment, a], events[s, segment, a]
            metrics = {"sent": (float(n),) * 3, "failed": (float(f),) * 3}
            for m, event in enumerate(EVENTS):
                metrics[event] = (float(ev[m]),) * 3
            arms[arm] = metrics
        out[s] = arms
    return out


def _segment(views: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...], g: int, upto: int) -> Evidence:
    """One report segment's evidence: (all, matured 72 h, matured 24 h) sums of one rollout."""
    everything, m72, m24 = views
    return Evidence(
        _stage_arms(*everything, upto, g),
        {72.0: _stage_arms(*m72, upto, g), 24.0: _stage_arms(*m24, upto, g)},
    )


def gbstats_test() -> Callable[[float, float, float, float], bool] | None:
    """(n_t, x_t, n_c, x_c) -> significantly worse, with gbstats; None when unavailable."""
    try:
        from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
        from gbstats.models.statistics import ProportionStatistic
    except Exception:  # pragma: no cover - reported in the output
        return None
    config = SequentialConfig(alpha=0.05, sequential_tuning_parameter=20_000, difference_type="absolute")

    def worse(n_t: float, x_t: float, n_c: float, x_c: float) -> bool:
        if min(n_t, n_c) < 200 or x_t + x_c == 0:
            return False
        result = SequentialTwoSidedTTest(
            ProportionStatistic(n=int(n_c), sum=x_c), ProportionStatistic(n=int(n_t), sum=x_t), config
        ).compute_result()
        return not result.error_message and bool(result.ci[1] < 0)

    return worse


def simulate(method: str, scenario: str, args: argparse.Namespace, gb: Any) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed + sum(map(ord, scenario)))
    effect = SCENARIOS[scenario]
    plan = parse_plan(
        [{"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp,
          "gates": {"min_recipients_per_arm": args.gate}} for bp in EXPOSURES]
    )  # fmt: skip
    config = parse_config("conversion_rate", {})
    harm_alpha = config.policy.harm_alpha
    n_r, n_s = args.rollouts, len(EXPOSURES)
    streams = Streams(n_r, args.max_waves)
    stage = np.zeros(n_r, dtype=int)
    stage_started = np.zeros(n_r, dtype=int)
    live = np.ones(n_r, dtype=bool)
    excluded = np.zeros((n_r, len(SEGMENTS)), dtype=bool)
    outcome = np.array(["ramping"] * n_r, dtype=object)
    stopped_stage = np.zeros(n_r, dtype=int)
    reached_100 = np.zeros(n_r, dtype=bool)
    better = np.zeros(n_r, dtype=bool)
    waves_used = np.full(n_r, args.max_waves)
    started = time.perf_counter()
    for wave in range(args.max_waves):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        streams.send_wave(rng, idx, wave, stage, excluded, effect, args.wave)
        reached_100[idx] |= stage[idx] == n_s - 1
        sent72, failed72, ev72 = streams.sums(idx, wave, WINDOWS["conversion"])
        gate_met = sent72[np.arange(idx.size), stage[idx], :, 0].sum(axis=1) >= args.gate
        decisions: dict[int, str] = {}
        if method == "mailramp":
            sent, failed, ev = streams.sums(idx, wave, None)
            sent24, failed24, ev24 = streams.sums(idx, wave, 24.0)
            now = START + timedelta(days=wave + 1)

            for j, r in enumerate(idx):
                s = int(stage[r])
                matured = {
                    72.0: _stage_arms(sent72[j], failed72[j], ev72[j], s, None),
                    24.0: _stage_arms(sent24[j], failed24[j], ev24[j], s, None),
                }
                views = (
                    (sent[j], failed[j], ev[j]),
                    (sent72[j], failed72[j], ev72[j]),
                    (sent24[j], failed24[j], ev24[j]),
                )
                segments = {name: _segment(views, g, s) for g, name in enumerate(SEGMENTS)}
                verdict = decide(
                    Snapshot(
                        rollout_id=int(r), state="ramping", killed=False, stage_index=s, stages=plan,
                        holdout_bp=HOLDOUT_BP, config=config, data=_stage_arms(sent[j], failed[j], ev[j], s, None),
                        now=now, matured=matured, segments=segments,
                        excluded_segments=tuple(n for g, n in enumerate(SEGMENTS) if excluded[r, g]),
                        stage_last_send_at=now - timedelta(days=1),
                        stage_started_at=START + timedelta(days=int(stage_started[r])),
                    )
                )  # fmt: skip
                better[r] |= bool((verdict.evidence.get("primary") or {}).get("better"))
                if verdict.outcome == "exclude_segment":
                    excluded[r, SEGMENTS.index(verdict.evidence["segment"])] = True
                else:
                    decisions[int(r)] = verdict.outcome
        else:
            # the baselines watch the primary metric only, on matured whole arms
            n_t, x_t = sent72[:, :, :, 0].sum(axis=2), ev72[:, :, :, 0, 0].sum(axis=2)
            n_c, x_c = sent72[:, :, :, 1:].sum(axis=(2, 3)), ev72[:, :, :, 1:, 0].sum(axis=(2, 3))
            if method == "sprt_oracle":
                est, info = relative_sequence(n_t, x_t, x_t, n_c, x_c, x_c, True)
                worse = sprt_log_lr(est, info, ORACLE_EFFECT) >= math.log(1 / harm_alpha)
            elif method == "naive_z":
                s_est = stratified(n_t, x_t, x_t, n_c, x_c, x_c, binary=True)
                with np.errstate(divide="ignore", invalid="ignore"):
                    z = np.where(s_est.variance > 0, s_est.difference / np.sqrt(s_est.variance), 0.0)
                worse = (n_t.sum(axis=1) >= 200) & (z < -1.959963984540054)
                better[idx] |= (n_t.sum(axis=1) >= 200) & (z > 1.959963984540054)
            else:
                worse = np.array(
                    [gb(n_t[j].sum(), x_t[j].sum(), n_c[j].sum(), x_c[j].sum()) if gb else False
                     for j in range(idx.size)]
                )  # fmt: skip
            for j, r in enumerate(idx):
                decisions[int(r)] = "rollback" if worse[j] else ("advance" if gate_met[j] else "hold")
        for r, verdict_outcome in decisions.items():
            if verdict_outcome == "advance":
                if stage[r] + 1 < n_s:
                    stage[r] += 1
                    stage_started[r] = wave + 1
                    continue
                outcome[r] = "completed"
            elif verdict_outcome in ("rollback", "pause"):
                outcome[r] = "rolled_back" if verdict_outcome == "rollback" else "paused"
            else:
                continue
            live[r] = False
            stopped_stage[r] = stage[r]
            waves_used[r] = wave + 1
    stopped_stage[live] = stage[live]
    exposed = streams.sent[:, :, :, 0].sum(axis=(1, 2)) + streams.failed[:, :, :, 0].sum(axis=(1, 2))
    rolled = outcome == "rolled_back"
    completed = outcome == "completed"
    return {
        "rolled_back": float(rolled.mean()),
        "rolled_back_before_25": float((rolled & (np.asarray(EXPOSURES)[stopped_stage] < 2500)).mean()),
        "reached_100": float(reached_100.mean()),
        "completed": float(completed.mean()),
        "paused": float((outcome == "paused").mean()),
        "segment_excluded": float(excluded.any(axis=1).mean()),
        "significantly_better": float(better.mean()),
        "wrong": float((rolled | better | (outcome == "paused") | excluded.any(axis=1)).mean()),
        "median_exposed": float(np.median(exposed)),
        "p90_exposed": float(np.percentile(exposed, 90)),
        "median_waves_to_complete": float(np.median(waves_used[completed])) if completed.any() else None,
        "mean_waves_to_complete": float(np.mean(waves_used[completed])) if completed.any() else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=20_000, help="contacts per wave")
    parser.add_argument("--gate", type=int, default=2_000, help="matured treatment recipients per stage")
    parser.add_argument("--max-waves", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20241120)
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--events", type=int, default=0, help="also time evaluate() with this many events stored"
    )
    args = parser.parse_args()
    gb = gbstats_test()
    methods = [m for m in args.methods.split(",") if m and (m != "gbstats" or gb is not None)]
    scenarios = [s for s in SCENARIOS if not args.scenarios or s in args.scenarios.split(",")]
    if args.rollouts <= 0:
        scenarios = []
    print(f"{args.rollouts} rollouts per scenario, waves of {args.wave:,} contacts a day, gate {args.gate:,} matured "
          f"treatment recipients, stages {', '.join(f'{e / 100:g}%' for e in EXPOSURES)} (holdout {HOLDOUT_BP / 100:g}%), "
          f"up to {args.max_waves} waves; gbstats: {'available' if gb else 'NOT importable'}", flush=True)  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        results[scenario] = {}
        for method in methods:
            results[scenario][method] = simulate(method, scenario, args, gb)
            print(f"  {scenario} / {method}: {results[scenario][method]['seconds']} s", flush=True)
    head = (f"{'scenario':34} {'method':12} {'rollback':>8} {'<25%':>6} {'100%':>6} {'done':>6} {'paused':>6} "
            f"{'seg.excl':>8} {'better':>6} {'median exp.':>11} {'p90 exp.':>9} {'waves':>5}")  # fmt: skip
    print("\n" + head + "\n" + "-" * len(head))
    for scenario, by_method in results.items():
        for method, r in by_method.items():
            print(
                f"{scenario:34} {method:12} {pct(r['rolled_back']):>8} {pct(r['rolled_back_before_25']):>6} "
                f"{pct(r['reached_100']):>6} {pct(r['completed']):>6} {pct(r['paused']):>6} "
                f"{pct(r['segment_excluded']):>8} {pct(r['significantly_better']):>6} {r['median_exposed']:>11,.0f} "
                f"{r['p90_exposed']:>9,.0f} {r['mean_waves_to_complete'] or 0:>5.1f}"
            )
    harm = results.get(HARM_SCENARIO, {})
    ratio = (
        harm["mailramp"]["median_exposed"] / harm["sprt_oracle"]["median_exposed"]
        if "mailramp" in harm and "sprt_oracle" in harm
        else None
    )
    print(f"\nexposure_vs_oracle ({HARM_SCENARIO}, median exposed, mailramp / SPRT oracle): "
          f"{'-' if ratio is None else f'{ratio:.2f}x'}")  # fmt: skip
    timing: dict[str, Any] = {}
    if args.events > 0:
        from bench.decisions_db import evaluation_timing

        timing = evaluation_timing(args.events)
    print(
        json.dumps(
            {"rollouts_per_scenario": args.rollouts, "wave": args.wave, "gate": args.gate, "gbstats": gb is not None,
             "exposure_vs_oracle": ratio, "scenarios": results, **timing},
            separators=(",", ":"),
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
