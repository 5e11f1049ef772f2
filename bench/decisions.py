"""Automatic decisions on plans sized to the audience: simulated rollouts per cell, beside the forecast.

Cells: waves of 5,000, 20,000 and 100,000 contacts a day; base conversion 1%, 3% and 8%; events
arriving within hours or over three days (`bench/decisions_sim.py` says how). Each cell gets the plan
`campaigns.rollout.sizing` makes for that audience (the baselines as the workspace's history, the
maturation window learned from the delays) and its forecast (`campaigns.rollout.forecast`). Scenarios:
no effect; +10%; -10%, -20%, -30% conversions; a harm in one of four segments (-50% there); x3
unsubscribes; clicks -20% alone (conversions flat; clicks 4%). Each cell has the holdout the planner
gives that audience (`campaigns.rollout.watch_forecast`). Methods: ``mailramp`` (the real `decide`), ``oracle`` (Wald's SPRT knowing the true
effect, seeing each event when it arrives, same gates: the floor of exposure), ``gbstats`` (GrowthBook's
sequential test on matured pooled counts, same gates; ``pip install --no-deps gbstats==0.8.0``).

Figures per cell, against the issue's targets: no-effect rolled back or paused (<= 5%), reaching
everyone within 60 waves (>= 95% where the forecast says it can), the forecast's waves to everyone
against the simulated median, +10% within 22 waves (20,000 at 3%) and within the forecast's time,
-20%: median exposed against the oracle's (<= 1.5x) and reaching 100% (<= 0.5%), the forecast's
expected exposure against the simulated median, the segment harm excluded and the rest completing,
clicks -20% rolled back or paused (>= 90%).

Run: ``python bench/decisions.py --rollouts 40`` (1,000 per cell is the issue's figure; the cost is
about a second per 30 rollouts and scenario on this machine); ``--cells 20k/3%/days,...`` for a subset;
``--events N`` also times `evaluate()` with N events stored. The last line is one JSON object;
``--table OUTPUT`` prints the table again from a finished run's output (its last line).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.decisions_sim import LEARNED, Cell, holdout_for, simulate
from campaigns.decisions.policy import Policy
from campaigns.rollout.forecast import forecast
from campaigns.rollout.sizing import DEFAULT_BASELINES, Cadence, PlanInputs, size_plan

CELLS = [
    Cell(w, b, d) for w in (5000, 20_000, 100_000) for b in (0.01, 0.03, 0.08) for d in ("hours", "days")
]
SCENARIOS: dict[str, tuple[dict[str, dict[str, float]], float]] = {
    "no effect": ({}, 0.0),
    "+10%": ({"*": {"conversion": 1.1}}, 0.0),
    "-10%": ({"*": {"conversion": 0.9}}, -0.1),
    "-20%": ({"*": {"conversion": 0.8}}, -0.2),
    "-30%": ({"*": {"conversion": 0.7}}, -0.3),
    "segment A -50%": ({"A": {"conversion": 0.5}}, 0.0),
    "x3 unsubscribes": ({"*": {"unsubscribe": 3.0}}, 0.0),
    "clicks -20%": ({"*": {"click": 0.8}}, 0.0),
}


def gbstats_test() -> Any:
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


def plan_for(cell: Cell) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    policy = Policy()
    window, p50 = LEARNED[cell.delay]
    inputs = PlanInputs(
        Cadence("series", cell.wave, 24.0), baselines={**DEFAULT_BASELINES, "conversion_rate": cell.base},
        baseline_source="history", window_hours=window, arrival_p50_hours=p50,
        unsubscribe_window_hours=window, unsubscribe_p50_hours=p50,
        harm_alpha=policy.harm_alpha, rail_alpha=policy.rail_alpha(), holdout_bp=holdout_for(cell),
    )  # fmt: skip
    sized = size_plan(inputs)
    return sized.stages, forecast(inputs, sized.stages, sized)


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def summarize(r: dict[str, np.ndarray], max_waves: int, forecast_to_all: int | None = None) -> dict[str, Any]:
    outcome, reached = r["outcome"], r["reached_at"]
    by = max_waves if forecast_to_all is None else forecast_to_all
    return {
        "rolled_back_or_paused": float(np.isin(outcome, ("rolled_back", "paused")).mean()),
        "reached_100": float((reached >= 0).mean()),
        "reached_100_within_60": float(((reached >= 0) & (reached < 60)).mean()),
        "reached_100_within_22": float(((reached >= 0) & (reached < 22)).mean()),
        "reached_100_within_forecast": float(((reached >= 0) & (reached <= by)).mean()),
        "median_waves_to_100": _median(reached[reached >= 0].astype(float)),
        "median_waves_to_complete": _median(r["stopped_at"][outcome == "completed"].astype(float)),
        "median_exposed": float(np.median(r["exposed"])),
        "segment_A_excluded": float(r["excluded"][:, 0].mean()),
        "other_segment_excluded": float(r["excluded"][:, 1:].any(axis=1).mean()),
        "completed": float((outcome == "completed").mean()),
        "rolled_back_by_wave_3": float(((outcome == "rolled_back") & (r["stopped_at"] < 3)).mean()),
        "max_waves": max_waves,
    }


def _task(job: tuple[Cell, str, str, argparse.Namespace]) -> tuple[str, str, str, dict[str, Any], float]:
    """One (cell, scenario, method) in a worker process: the seed depends on the cell and scenario only."""
    cell, name, method, args = job
    started = time.process_time()
    stages, fc = plan_for(cell)
    effect, oracle_effect = SCENARIOS[name]
    seed = args.seed + 1000 * list(SCENARIOS).index(name) + zlib.crc32(cell.name.encode()) % 997
    common = dict(cell=cell, effect=effect, stages=stages, rollouts=args.rollouts, max_waves=args.max_waves,
                  seed=seed, segments=name.startswith("segment"))  # fmt: skip
    extra: dict[str, Any] = {}
    if method == "oracle":
        extra["oracle_effect"] = oracle_effect
    if method == "gbstats":
        extra["gb"] = gbstats_test()
    result = summarize(simulate(method, **common, **extra), args.max_waves, fc["sends_to_everyone"])
    return cell.name, name, method, result, time.process_time() - started


def jobs_for(cell: Cell, args: argparse.Namespace) -> list[tuple[Cell, str, str, argparse.Namespace]]:
    out = []
    for name in (s for s in SCENARIOS if not args.scenarios or s in args.scenarios.split(",")):
        out.append((cell, name, "mailramp", args))
        if name in ("-10%", "-20%", "-30%"):
            out.append((cell, name, "oracle", args))
        if args.gbstats and name in ("+10%", "-20%"):
            out.append((cell, name, "gbstats", args))
    return out


def run_cells(cells: list[Cell], args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Every (cell, scenario, method) as one task over `--workers` processes; the slow ones first."""
    results: dict[str, Any] = {}
    for cell in cells:
        stages, fc = plan_for(cell)
        results[cell.name] = {
            "plan": [(s["exposure_bp"], s["gates"]["min_recipients_per_arm"]) for s in stages],
            "holdout_bp": holdout_for(cell),
            "forecast": {k: fc[k] for k in ("sends_to_everyone", "expected_exposed_if_harmful",
                                            "sends_to_complete")
                         if k in fc},
        }  # fmt: skip
    jobs = [j for c in cells for j in jobs_for(c, args)]
    jobs.sort(key=lambda j: (j[2] != "mailramp", j[0].wave))  # small waves live longest: start them first
    cpu = 0.0
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        for cell_name, name, method, result, spent in pool.map(_task, jobs):
            results[cell_name].setdefault(name, {})[method] = result
            cpu += spent
    return results, cpu


def targets(cell: Cell, r: dict[str, Any]) -> dict[str, Any]:
    fc = r["forecast"]
    t: dict[str, Any] = {}
    if "no effect" in r:
        aa = r["no effect"]["mailramp"]
        t["aa_wrong"] = aa["rolled_back_or_paused"]
        t["aa_reach_60"] = aa["reached_100_within_60"]
        t["forecast_can_60"] = fc["sends_to_everyone"] is not None and fc["sends_to_everyone"] < 60
        sim = aa["median_waves_to_100"]
        t["to_all_forecast_vs_sim"] = (
            (fc["sends_to_everyone"] / sim) if sim and fc["sends_to_everyone"] else None
        )
        done, fc_done = aa["median_waves_to_complete"], fc.get("sends_to_complete")
        t["aa_completed"] = aa["completed"]
        t["complete_forecast_vs_sim"] = fc_done / done if done and fc_done else None
        t["complete_forecast"] = fc_done
    if "+10%" in r:
        up = r["+10%"]["mailramp"]
        t["up10_median_waves"] = up["median_waves_to_100"]
        t["up10_within_22"] = up["reached_100_within_22"]
        fc_all = fc["sends_to_everyone"]
        t["up10_within_forecast"] = None if fc_all is None else up["reached_100_within_forecast"]
        gb = r["+10%"].get("gbstats")
        t["up10_gbstats_median_waves"] = gb["median_waves_to_100"] if gb else None
    if "-20%" in r:
        harm = r["-20%"]
        t["harm20_reached_100"] = harm["mailramp"]["reached_100"]
        o = harm.get("oracle", {}).get("median_exposed")
        t["harm20_exposed_vs_oracle"] = harm["mailramp"]["median_exposed"] / o if o else None
        gb = harm.get("gbstats")
        t["harm20_gbstats_exposed_vs_oracle"] = gb["median_exposed"] / o if gb and o else None
        t["harm20_gbstats_reached_100"] = gb["reached_100"] if gb else None
        e = fc["expected_exposed_if_harmful"]
        t["exposure_forecast_vs_sim"] = (
            e / harm["mailramp"]["median_exposed"] if e and harm["mailramp"]["median_exposed"] else None
        )
    if "segment A -50%" in r:
        seg = r["segment A -50%"]["mailramp"]
        t["segment_excluded"] = seg["segment_A_excluded"]
        t["segment_rest_reached_100"] = seg["reached_100"]
    if "x3 unsubscribes" in r:
        t["unsub3_rolled_back_by_wave_3"] = r["x3 unsubscribes"]["mailramp"]["rolled_back_by_wave_3"]
    if "clicks -20%" in r:
        t["clicks20_rolled_back_or_paused"] = r["clicks -20%"]["mailramp"]["rolled_back_or_paused"]
    return t


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(results: dict[str, Any], checks: dict[str, Any]) -> str:
    """The per-cell table of docs/performance.md."""
    head = ("| cell | plan (exposure: gate) | A/A rolled back or paused | A/A at 100% < 60 waves | waves to 100%: "
            "forecast / sim. | waves to complete: forecast / sim. (A/A completed < 60) | +10% at 100% < 22 waves | "
            "+10% within the forecast | +10%: median waves to 100%, gbstats | -20%: reached 100%, gbstats | "
            "-20%: exposed vs oracle, gbstats | -20% exposure: forecast / sim. | "
            "segment -50%: excluded, rest at 100% | x3 unsubscribes rolled back by wave 3 | "
            "clicks -20%: rolled back or paused |")  # fmt: skip
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        t, fc = checks[name], r["forecast"]
        plan = (
            " → ".join(f"{bp / 100:g}%: {gate:,}" for bp, gate in r["plan"])
            + f" (holdout {r['holdout_bp'] / 100:g}%)"
        )
        aa = r["no effect"]["mailramp"]
        done = f"{fc.get('sends_to_complete')} / {_waves(aa['median_waves_to_complete'])} ({_pct(aa['completed'])})"
        seg = r["segment A -50%"]["mailramp"]
        rows.append(
            f"| {name} | {plan} | {_pct(t['aa_wrong'])} | {_pct(t['aa_reach_60'])} | {fc['sends_to_everyone']} / "
            f"{_waves(aa['median_waves_to_100'])} | {done} | {_pct(t['up10_within_22'])} | {_pct(t['up10_within_forecast'])} | "
            f"{_waves(t['up10_median_waves'])}, {_waves(t.get('up10_gbstats_median_waves'))} | "
            f"{_pct(t['harm20_reached_100'])}, {_pct(t.get('harm20_gbstats_reached_100'))} | "
            f"{fmt(t['harm20_exposed_vs_oracle'])}x, {fmt(t.get('harm20_gbstats_exposed_vs_oracle'))}x | "
            f"{fmt(t['exposure_forecast_vs_sim'])}x | {_pct(seg['segment_A_excluded'])}, {_pct(seg['reached_100'])} | "
            f"{_pct(t['unsub3_rolled_back_by_wave_3'])} | {_pct(t.get('clicks20_rolled_back_or_paused'))} |"
        )  # fmt: skip
    return "\n".join(rows)


def table_of(output: Path) -> str:
    """The table of a finished run and each target's range over its cells, from the JSON object its
    output ends with, read once (a table's columns can change after a run of an hour and a half)."""
    run = json.loads(output.read_text().strip().splitlines()[-1])
    results = run["cells"]
    table = markdown(results, {name: targets(Cell.parse(name), r) for name, r in results.items()})
    return table + "\n\n" + summary(run["targets"])


def summary(checks: dict[str, Any]) -> str:
    """Each target's range over the cells (the cells a target applies to), one line each."""

    def span(key: str, where: Any = None, pct: bool = True) -> str:
        xs = [
            t[key]
            for name, t in checks.items()
            if t.get(key) is not None and (where is None or where(name, t))
        ]
        if not xs:
            return "-"
        show = _pct if pct else (lambda x: f"{x:.2f}x")
        return f"{show(min(xs))}-{show(max(xs))} over {len(xs)} cells"

    can = lambda _name, t: t.get("forecast_can_60")  # noqa: E731
    at_20k_3 = lambda name, _t: name.startswith("20k/3%/")  # noqa: E731
    return "\n".join([
        f"no effect, rolled back or paused (<= 5%): {span('aa_wrong')}",
        f"no effect, at 100% within 60 waves where the forecast says so (>= 95%): {span('aa_reach_60', can)}",
        f"  forecast's waves to 100% / simulated median (within 25%): {span('to_all_forecast_vs_sim', pct=False)}",
        f"+10% at 100% within 22 waves, 20k at 3% (all): {span('up10_within_22', at_20k_3)}",
        f"+10% at 100% within the forecast's time, where it is within 60: {span('up10_within_forecast', can)}",
        f"-20% reached 100% (<= 0.5%): {span('harm20_reached_100')}; gbstats {span('harm20_gbstats_reached_100')}",
        f"-20% median exposed vs the oracle (<= 1.5x): {span('harm20_exposed_vs_oracle', pct=False)}; "
        f"gbstats {span('harm20_gbstats_exposed_vs_oracle', pct=False)}",
        f"-20% exposure, forecast / simulated median (within 25%): {span('exposure_forecast_vs_sim', pct=False)}",
        f"segment -50%: excluded (>= 90%) {span('segment_excluded')}; the rest at 100% where the forecast "
        f"says it can be {span('segment_rest_reached_100', can)}",
        f"clicks -20% rolled back or paused (>= 90%): {span('clicks20_rolled_back_or_paused')}",
        f"x3 unsubscribes while ramping, rolled back by wave 3: {span('unsub3_rolled_back_by_wave_3')}",
    ])  # fmt: skip


def _waves(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000, help="rollouts per cell and scenario")
    parser.add_argument(
        "--cells",
        default="",
        help="comma-separated cells such as 20k/3%%/days; any wave and base: 50k/2%%/days",
    )
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--max-waves", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20241120)
    parser.add_argument("--gbstats", action="store_true", help="also run gbstats (+10%%, -20%%)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (cells x scenarios at once)")
    parser.add_argument("--events", type=int, default=0, help="also time evaluate() with this many events")
    parser.add_argument(
        "--table", default="", help="print the table of a finished run's output file and stop"
    )
    args = parser.parse_args()
    if args.table:
        print(table_of(Path(args.table)))
        return
    try:
        cells = [Cell.parse(name) for name in args.cells.split(",")] if args.cells else CELLS
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{args.rollouts} rollouts per cell and scenario, a wave a day, up to {args.max_waves} waves; "
          f"gbstats: {'on' if args.gbstats else 'off'}; {args.workers} worker process(es)", flush=True)  # fmt: skip
    started = time.perf_counter()
    results, cpu = run_cells(cells, args)
    checks: dict[str, Any] = {}
    for cell in cells:
        checks[cell.name] = targets(cell, results[cell.name])
        r = results[cell.name]
        print(f"\n{cell.name}: plan {r['plan']}, holdout {r['holdout_bp']} bp; forecast: to everyone after {r['forecast']['sends_to_everyone']} "
              f"waves, {r['forecast']['expected_exposed_if_harmful']} exposed to a -20% harm")  # fmt: skip
        for name, row in r.items():
            if name in ("plan", "holdout_bp", "forecast"):
                continue
            for method, m in row.items():
                print(f"  {name:16} {method:9} wrong {fmt(m['rolled_back_or_paused']):>5}  100% {fmt(m['reached_100']):>5} "
                      f"(<60: {fmt(m['reached_100_within_60'])}, median wave {fmt(m['median_waves_to_100'])})  "
                      f"exposed {m['median_exposed']:>9,.0f}  seg.A excl. {fmt(m['segment_A_excluded'])}  "
                      f"rolled back by wave 3 {fmt(m['rolled_back_by_wave_3'])}")  # fmt: skip
        print("  targets: " + ", ".join(f"{k} {fmt(v)}" for k, v in checks[cell.name].items()), flush=True)
    wall = time.perf_counter() - started
    if not args.scenarios:
        print("\n" + markdown(results, checks) + "\n\n" + summary(checks))
    print(f"\n{wall:.0f} s wall, {cpu:.0f} s CPU in the workers", flush=True)
    timing: dict[str, Any] = {}
    if args.events > 0:
        from bench.decisions_db import evaluation_timing

        timing = evaluation_timing(args.events)
    print(json.dumps({"rollouts_per_cell": args.rollouts, "wall_s": wall, "cpu_s": cpu, "targets": checks, "cells": results, **timing},
                     separators=(",", ":"), default=float))  # fmt: skip


if __name__ == "__main__":
    main()
