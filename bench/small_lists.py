"""Small lists through the README's campaign path: K seeds per scenario, the rates issue 20 asks for.

Each run is tests/small_list_path.py end to end on a fresh app: contacts imported by the API, a
segment, a template with AI content, a campaign with ``ai`` (the default plan sized by the planner,
holdout 5%), weekly sends planned by the API and sent by an rq worker in this process to a local
SMTP server, simulated recipients' events through the tracking stream and the ingest worker, and
the periodic evaluator after every simulated day, on the product's simulated clock. Scenarios:
3,000 and 6,000 contacts, no effect and x3 unsubscribes for AI-content recipients (0.9% against
0.3%), ``--weeks`` weekly sends (3). Recipients act independently (``--draws bernoulli``, the
default: real noise) or in exactly the stated shares (``--draws exact``, as the test does).

Rates per scenario: **rolled back within 3 sends** (x3), **moved or explained** (no effect: advanced
a stage, or the forecast at creation said it would not within the sends made and the hold names the
blocking gate with the sends it still needs), **false alarm** (no effect rolled back or paused) and
**SRM pause** (paused by the sample-ratio check; it used to count sends, not contacts, so a list
re-sent every week tripped it whatever the effect; it now confirms on distinct contacts,
campaigns/decisions/srm_contacts.py, so this should stay 0).
The seed draws the recipients' events; who gets AI content comes from each rollout's own random salt.

Run: ``python bench/small_lists.py --seeds 5`` (on PostgreSQL and Redis with BENCH_DATABASE_URL and
BENCH_REDIS_URL, whose Redis db it empties before each run; else SQLite and an embedded Redis).
Prints one line per run, the rates, and one JSON line last.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller

from bench.common import emit, scratch_app, workdir
from tests.conftest import ApiClient, SmtpSink, free_port
from tests.small_list_path import DRAWS, Run, run_weeks

SCENARIOS = (("no effect", False), ("x3 unsubscribes", True))


def one_run(workdir: Path, contacts: int, harmful: bool, seed: int, weeks: int, draws: str) -> Run:
    from app.auth import create_user, issue_token
    from app.extensions import db
    from models import Role

    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        app = scratch_app(workdir, SMTP_URL=sink.url, TESTING=True)
        rt = app.extensions["mailramp"]
        rt.redis.flushdb()
        rt.settings = replace(rt.settings, throttle={"enabled": False})
        with app.test_request_context():
            user = create_user("mia@example.com", "correct horse battery staple", Role.marketer)
            token = issue_token(user)
            db().commit()
        api = ApiClient(client=app.test_client(), token=token, email="mia@example.com")
        return run_weeks(api, rt, contacts=contacts, weeks=weeks, harmful=harmful, seed=seed,
                         ai={"holdout_percent": 5}, draws=draws, after_send=sink.messages.clear)  # fmt: skip
    finally:
        controller.stop()


def explained(run: Run, weeks: int) -> bool:
    """No effect: moved a stage, or the forecast said it would not within these sends and the hold
    names the blocking gate and the sends it still needs."""
    if run.final.stage_index > 0:
        return True
    forecast = run.created.get("rollout_forecast") or {}
    first = (forecast.get("stages") or [{}])[0]
    said = first.get("sends") is None or first["sends"] > weeks
    gate = next((b for b in run.final.blocking if b.get("arm") == "treatment"), None)
    named = (
        gate is not None
        and gate.get("more_sends") is not None
        and f"about {gate['more_sends']} more weekly sends" in " ".join(run.final.reasons)
    )
    return bool(said and named and run.final.state == "ramping")


def srm_paused(run: Run) -> bool:
    """Paused by the sample-ratio check (a false alarm unless assignment is really broken)."""
    return run.final.state == "paused" and "sample-ratio mismatch" in " ".join(run.final.reasons)


def describe(run: Run) -> str:
    final = run.final
    reason = re.sub(r"\s+", " ", (final.reasons or [""])[0])[:150]
    return f"week {final.week} {final.state} stage {final.stage_index} ({final.outcome}): {reason}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per scenario")
    parser.add_argument("--sizes", default="3000,6000")
    parser.add_argument("--weeks", type=int, default=3)
    parser.add_argument("--scenarios", default="no effect,x3 unsubscribes")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--draws", default="bernoulli", choices=DRAWS, help="how recipients act (who_acts)")
    args = parser.parse_args()
    started = time.perf_counter()
    wanted = [s for s in SCENARIOS if s[0] in args.scenarios.split(",")]
    results: dict[str, Any] = {}
    words: dict[str, str] = {}
    tmp = workdir()  # everything started in it (an embedded Redis) is stopped at exit
    for size in [int(s) for s in args.sizes.split(",") if s]:
        for name, harmful in wanted:
            rows = []
            for k in range(args.seeds):
                seed = args.seed + 1000 * k + size
                run_started = time.perf_counter()
                run = one_run(
                    Path(tmp) / f"{size}-{harmful}-{k}", size, harmful, seed, args.weeks, args.draws
                )
                words.setdefault(str(size), (run.created.get("rollout_forecast") or {}).get("words", ""))
                rows.append(run)
                print(f"{size:>6,} {name:16} seed {seed}: {describe(run)} [{time.perf_counter() - run_started:.0f} s]",
                      flush=True)  # fmt: skip
            cell: dict[str, Any] = {
                "runs": len(rows),
                "srm_paused": sum(srm_paused(r) for r in rows) / len(rows),
            }
            if harmful:
                after = [r.rolled_back_after() for r in rows]
                caught = [a for a in after if a is not None]
                cell["rolled_back_within_3_sends"] = sum(a <= 3 for a in caught) / len(rows)
                cell[f"rolled_back_within_{args.weeks}_sends"] = len(caught) / len(rows)
                cell["median_sends_to_rollback"] = statistics.median(caught) if caught else None
                cell["sends_to_rollback"] = after
            else:
                cell["moved_or_explained"] = sum(explained(r, args.weeks) for r in rows) / len(rows)
                cell["advanced"] = sum(r.final.stage_index > 0 for r in rows) / len(rows)
                cell["false_alarm"] = sum(r.final.state in ("rolled_back", "paused") for r in rows) / len(
                    rows
                )
            results[f"{name} @ {size}"] = cell
    print("\nwords at creation:")
    for label, said in words.items():
        print(f"  {label}: {said}")
    print(
        f"\n{'scenario':28} {'runs':>4} {'rolled back <=3':>15} {'moved/explained':>15} {'false alarm':>11} {'SRM pause':>9}"
    )
    for key, cell in results.items():
        rb, mv, fa = (
            cell.get(k) for k in ("rolled_back_within_3_sends", "moved_or_explained", "false_alarm")
        )
        print(
            f"{key:28} {cell['runs']:>4} {pct(rb):>15} {pct(mv):>15} {pct(fa):>11} {pct(cell['srm_paused']):>9}"
        )
    seconds = round(time.perf_counter() - started, 1)
    print(f"\n{seconds} s")
    emit({"bench": "small_lists", "seeds": args.seeds, "draws": args.draws, "weeks": args.weeks, "seconds": seconds, "words": words,
          **results})  # fmt: skip


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


if __name__ == "__main__":
    main()
