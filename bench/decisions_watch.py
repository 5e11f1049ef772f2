"""Watching after 100% and clicks as a guardrail: simulated rollouts through the real `decide()`.

Two parts, a look after every wave (one wave a day), events arriving over three days (60%, 25%, 15%);
baselines per recipient: conversion 3%, click 4%, unsubscribe 0.4%, complaint 0.03%, bounce 0.5%.

1. **Completed rollouts** (95% AI content, 5% holdout), watched for ``--watch-waves`` (20) waves after
   completion. Scenarios: A/A (nothing changes: any rollback is a false alarm) and "x3 unsubscribes
   from wave 5 on". Success: rolled back at one of the looks after waves 5, 6 or 7 (within 3 waves).
   Peer: the same rate-ratio test on everything since completion, at the same alpha (no e-detector),
   and "nothing watches" (before this change: 0%).
2. **Ramping rollouts** on the default plan (1% -> 5% -> 10% -> 25% -> 50% -> 100%, 2,000 matured
   treatment recipients per stage, 5% holdout), up to ``--max-waves`` (40). Scenarios: A/A and
   "clicks -20%, conversions flat". Peer: the same policy with the click guardrail switched off
   (``{"click_rate": null}``: the behaviour before this change).

Part 2 runs on waves of 20,000 and 100,000: on smaller waves the default plan (2,000 per stage) does
not reach the stages where clicks are measured within 40 waves (issue 20's plans sized to the
audience are another change). Run: ``python bench/decisions_watch.py`` (``--rollouts 50
--ramp-rollouts 20`` for a quick look). Prints rates per
scenario, wave size and method; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaigns.decisions import Snapshot, decide
from campaigns.decisions.policy import parse_config
from campaigns.decisions.watch import watch_alpha
from campaigns.rollout.sizing import DEFAULT_BASELINES, Cadence, PlanInputs
from campaigns.rollout.stages import parse_plan
from campaigns.rollout.watch_forecast import default_holdout
from campaigns.stats import rate_ratio_test

ARMS = ("treatment", "control", "holdout")
EVENTS = ("conversion", "click", "unsubscribe", "complaint", "bounce")
BASE = {"conversion": 0.03, "click": 0.04, "unsubscribe": 0.004, "complaint": 0.0003, "bounce": 0.005}
ARRIVAL = np.array([0.6, 0.25, 0.15])
EXPOSURES = (100, 500, 1000, 2500, 5000, 10_000)
HOLDOUT_BP = 500
ONSET = 5  # the wave (after completion) from which the harm is on
START = datetime(2026, 1, 1, tzinfo=UTC)


class Stream:
    """One rollout's waves: recipients per arm and events per arm and arrival day."""

    def __init__(self, rng: np.random.Generator, waves: int, holdout_bp: int | None = None) -> None:
        self.rng = rng
        self.holdout_bp = HOLDOUT_BP if holdout_bp is None else holdout_bp
        self.sent = np.zeros((waves, 3))
        self.events = np.zeros((waves, 3, len(EVENTS), len(ARRIVAL)))
        self.stage = np.zeros(waves, dtype=int)

    def send(self, wave: int, size: int, exposure_bp: int, stage: int, effect: dict[str, float]) -> None:
        share_t = min(exposure_bp, 10_000 - self.holdout_bp) / 10_000
        n = self.rng.multinomial(
            size, [share_t, max(1 - share_t - self.holdout_bp / 10_000, 0.0), self.holdout_bp / 10_000]
        )
        self.sent[wave] = n
        self.stage[wave] = stage
        for a in range(3):
            for m, event in enumerate(EVENTS):
                rate = BASE[event] * (effect.get(event, 1.0) if a == 0 else 1.0)
                self.events[wave, a, m] = self.rng.multinomial(self.rng.binomial(n[a], rate), ARRIVAL)

    def seen(self, upto: int, window_h: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(sent, events) per wave 0..upto as seen at the look after `upto`; immature waves zeroed
        when a window is given."""
        age = upto + 1 - np.arange(upto + 1)  # days since each wave's send
        days = np.minimum(age, len(ARRIVAL))
        cum = np.cumsum(self.events[: upto + 1], axis=-1)
        ev = np.take_along_axis(cum, (days - 1).reshape(-1, 1, 1, 1), axis=-1)[..., 0]
        keep = np.ones(upto + 1) if window_h is None else (age * 24 >= window_h).astype(float)
        return self.sent[: upto + 1] * keep[:, None], ev * keep[:, None, None]


def arms_dict(sent: np.ndarray, events: np.ndarray) -> dict[str, dict[str, tuple[float, float, float]]]:
    out = {}
    for a, arm in enumerate(ARMS):
        metrics = {"sent": (float(sent[a]),) * 3, "failed": (0.0, 0.0, 0.0)}
        for m, event in enumerate(EVENTS):
            metrics[event] = (float(events[a, m]),) * 3
        out[arm] = metrics
    return out


def by_stage(stream: Stream, sent: np.ndarray, events: np.ndarray, upto: int) -> dict[int, Any]:
    out = {}
    for s in range(int(stream.stage[: upto + 1].max()) + 1):
        mask = stream.stage[: upto + 1] == s
        out[s] = arms_dict(sent[mask].sum(axis=0), events[mask].sum(axis=0))
    return out


def sized_holdout(wave: int) -> int:
    """The holdout the planner gives a rollout on this audience (`campaigns.rollout.watch_forecast`):
    one send of `wave` a day, these baselines, unsubscribes arriving as the streams make them (half
    within about 20 hours, 95% by about 64: what the workspace would learn from its own delays)."""
    rates = {**DEFAULT_BASELINES, "conversion_rate": BASE["conversion"], "click_rate": BASE["click"],
             "unsubscribe_rate": BASE["unsubscribe"], "complaint_rate": BASE["complaint"]}  # fmt: skip
    inputs = PlanInputs(Cadence("recurring", wave, 24.0), baselines=rates, unsubscribe_p50_hours=20.0,
                        unsubscribe_window_hours=64.0)  # fmt: skip
    return default_holdout(inputs, HOLDOUT_BP)


def watch_run(scenario: str, wave: int, args: argparse.Namespace, holdout_bp: int) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed + wave + sum(map(ord, scenario)))
    plan = parse_plan([{"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {}}])
    config = parse_config("conversion_rate", {})
    rails = 5
    alpha = watch_alpha(config.policy.alpha, None, rails)  # the peer gets the watch's alpha
    caught = {"mailramp": 0, "cumulative": 0, "nothing": 0}
    false = {"mailramp": 0, "cumulative": 0, "nothing": 0}
    delays: list[int] = []
    for _ in range(args.rollouts):
        stream = Stream(rng, args.watch_waves, holdout_bp)
        done = {"mailramp": False, "cumulative": False}
        for w in range(args.watch_waves):
            harm = scenario != "A/A" and w >= ONSET
            stream.send(w, wave, 10_000, 0, {"unsubscribe": 3.0} if harm else {})
            now = START + timedelta(days=w + 1)
            sent, ev = stream.seen(w, None)
            watched = tuple((START + timedelta(days=k), arms_dict(sent[k], ev[k])) for k in range(w + 1))
            if not done["mailramp"]:
                verdict = decide(
                    Snapshot(rollout_id=1, state="completed", killed=False, stage_index=0, stages=plan,
                             holdout_bp=holdout_bp, config=config, data={}, now=now, watched=watched)
                )  # fmt: skip
                if verdict.outcome == "rollback":
                    done["mailramp"] = True
                    _score(caught, false, "mailramp", scenario, w)
                    if scenario != "A/A" and w >= ONSET:
                        delays.append(w - ONSET + 1)
            if not done["cumulative"]:
                u = EVENTS.index("unsubscribe")
                test = rate_ratio_test(
                    (ev[:, 0, u].sum(),),
                    (sent[:, 0].sum(),),
                    (ev[:, 2, u].sum(),),
                    (sent[:, 2].sum(),),
                    alpha=alpha,
                )
                if test.worse:
                    done["cumulative"] = True
                    _score(caught, false, "cumulative", scenario, w)
    n = args.rollouts
    out: dict[str, Any] = {}
    for method in caught:
        out[method] = {
            "rolled_back_within_3_waves": caught[method] / n if scenario != "A/A" else None,
            "false_rollback": false[method] / n,
        }
    out["mailramp"]["median_waves_to_rollback"] = float(np.median(delays)) if delays else None
    out["holdout_bp"] = holdout_bp
    return out


def _score(caught: dict[str, int], false: dict[str, int], method: str, scenario: str, w: int) -> None:
    if scenario == "A/A" or w < ONSET:
        false[method] += 1
    elif w < ONSET + 3:
        caught[method] += 1


def ramp_run(scenario: str, wave: int, method: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed + wave + sum(map(ord, scenario)))
    plan = parse_plan(
        [{"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp, "gates": {"min_recipients_per_arm": 2000}}
         for bp in EXPOSURES]
    )  # fmt: skip
    config = parse_config("conversion_rate", {"click_rate": None} if method == "no_click_guardrail" else {})
    effect = {"click": 0.8} if scenario != "A/A" else {}
    counts = {"rolled_back": 0, "paused": 0, "completed": 0, "reached_100": 0}
    for _ in range(args.ramp_rollouts):
        stream = Stream(rng, args.max_waves)
        stage, started = 0, 0
        for w in range(args.max_waves):
            stream.send(w, wave, EXPOSURES[stage], stage, effect)
            now = START + timedelta(days=w + 1)
            everything = by_stage(stream, *stream.seen(w, None), w)
            matured = {h: by_stage(stream, *stream.seen(w, h), w) for h in (24.0, 72.0)}
            verdict = decide(
                Snapshot(rollout_id=1, state="ramping", killed=False, stage_index=stage, stages=plan,
                         holdout_bp=HOLDOUT_BP, config=config, data=everything, now=now, matured=matured,
                         stage_last_send_at=now - timedelta(days=1),
                         stage_started_at=START + timedelta(days=started))
            )  # fmt: skip
            if verdict.outcome in ("rollback", "pause"):
                counts["rolled_back" if verdict.outcome == "rollback" else "paused"] += 1
                break
            if verdict.outcome == "advance":
                if stage + 1 == len(EXPOSURES):
                    counts["completed"] += 1
                    break
                stage, started = stage + 1, w + 1
                if stage + 1 == len(EXPOSURES):
                    counts["reached_100"] += 1
    return {k: v / args.ramp_rollouts for k, v in counts.items()}


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200, help="completed rollouts per cell (part 1)")
    parser.add_argument("--ramp-rollouts", type=int, default=50, help="ramping rollouts per cell (part 2)")
    parser.add_argument("--waves", default="5000,20000,100000", help="wave sizes (contacts a day), part 1")
    parser.add_argument("--ramp-waves", default="20000,100000", help="wave sizes, part 2")
    parser.add_argument("--watch-waves", type=int, default=20)
    parser.add_argument("--max-waves", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--parts", default="watch,clicks")
    parser.add_argument(
        "--holdout-bp",
        type=int,
        default=0,
        help="part 1's holdout (basis points); 0: the planner's, sized to each wave size (and 5%% beside it)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.waves.split(",") if s]
    parts = args.parts.split(",")
    started = time.perf_counter()
    results: dict[str, Any] = {"watch": {}, "clicks": {}}
    if "watch" in parts:
        print(f"1. completed rollouts, watched {args.watch_waves} waves; harm x3 unsubscribes from wave {ONSET} on; "
              f"{args.rollouts} rollouts per cell")  # fmt: skip
        print(f"{'scenario':22} {'wave':>7} {'method':14} {'caught<=3':>9} {'false':>7} {'median waves':>12}")
        for scenario in ("A/A", "x3 unsubscribes"):
            for size in sizes:
                holdouts = dict.fromkeys(
                    (args.holdout_bp if args.holdout_bp else sized_holdout(size), HOLDOUT_BP)
                )
                for holdout in holdouts:
                    r = watch_run(scenario, size, args, holdout)
                    results["watch"][f"{scenario} @ {size} / holdout {holdout}"] = r
                    for method, m in r.items():
                        if not isinstance(m, dict) or (
                            holdout != next(iter(holdouts)) and method != "mailramp"
                        ):
                            continue
                        name = f"{method} {holdout / 100:g}%" if method == "mailramp" else method
                        print(f"{scenario:22} {size:>7,} {name:14} {pct(m['rolled_back_within_3_waves']):>9} "
                              f"{pct(m['false_rollback']):>7} {m.get('median_waves_to_rollback') or '-':>12}")  # fmt: skip
    if "clicks" in parts:
        print(
            f"\n2. ramping rollouts, default plan, up to {args.max_waves} waves; {args.ramp_rollouts} rollouts per cell"
        )
        print(f"{'scenario':22} {'wave':>7} {'method':20} {'rolled back':>11} {'paused':>7} {'completed':>9}")
        for scenario in ("A/A", "clicks -20%"):
            for size in [int(s) for s in args.ramp_waves.split(",") if s]:
                for method in ("mailramp",) if scenario == "A/A" else ("mailramp", "no_click_guardrail"):
                    r = ramp_run(scenario, size, method, args)
                    results["clicks"][f"{scenario} @ {size} / {method}"] = r
                    print(f"{scenario:22} {size:>7,} {method:20} {pct(r['rolled_back']):>11} {pct(r['paused']):>7} "
                          f"{pct(r['completed']):>9}")  # fmt: skip
    seconds = round(time.perf_counter() - started, 1)
    print(f"\n{seconds} s")
    print(json.dumps({"rollouts": args.rollouts, "ramp_rollouts": args.ramp_rollouts, "onset_wave": ONSET, "seconds": seconds, **results},
                     separators=(",", ":"), default=lambda x: None if isinstance(x, float) and math.isnan(x) else x))  # fmt: skip


if __name__ == "__main__":
    main()
