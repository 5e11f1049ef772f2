"""Assign arms with targeting rules to 1,000,000 contacts in bulk, and compare with the GrowthBook
Python SDK evaluating an equivalent feature rule contact by contact.

    .venv/bin/python bench/assign.py [--contacts 1000000] [--sdk-contacts 50000] [--repeat 5]

The targeting is the same on both sides: exclude segment, allow-list, beta group (attribute),
include segment, plan in (pro, team), country != Germany, 10% holdout, 30% exposure. Contacts are
generated (seeded), their columns built before timing; the SDK's attribute dicts are built before
timing too. The SDK is timed on a subset and its per-contact rate extrapolated. The last line is a
JSON object of the figures.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit
from campaigns.rollout.assignment import ContactFrame, assign, spec_from_row
from campaigns.rollout.bucketing import buckets

INCLUDE, EXCLUDE = 1, 2
PLANS = np.array(["pro", "free", "team", "trial", "pro"])
COUNTRIES = np.array(["France", "Germany", "United Kingdom", "Spain", "Netherlands", "Germany", "Italy"])
ALLOW_LIST = list(range(1000, 1100))
EXPOSURE_BP, HOLDOUT_BP = 3000, 1000


def contacts(n: int, seed: int = 7) -> ContactFrame:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 20 * n, dtype=np.int64), size=n, replace=False)
    return ContactFrame(
        ids=ids,
        attributes={
            "plan": PLANS[rng.integers(0, len(PLANS), n)],
            "beta": rng.random(n) < 0.01,
        },
        country=COUNTRIES[rng.integers(0, len(COUNTRIES), n)],
        segments={INCLUDE: rng.random(n) < 0.8, EXCLUDE: rng.random(n) < 0.05},
    )


def rollout_row() -> SimpleNamespace:
    return SimpleNamespace(
        id=1,
        salt="bench-5f2a9c",
        state="ramping",
        stage_index=1,
        stages=[{"kind": "internal", "exposure_bp": 0}, {"kind": "percent", "exposure_bp": EXPOSURE_BP}],
        holdout_bp=HOLDOUT_BP,
        targeting={
            "include_segments": [INCLUDE],
            "exclude_segments": [EXCLUDE],
            "rules": [
                {"attribute": "plan", "op": "in", "value": ["pro", "team"]},
                {"attribute": "country", "op": "ne", "value": "Germany"},
            ],
            "allow_list": ALLOW_LIST,
            "beta": {"attribute": "beta", "op": "eq", "value": True},
        },
        killed=False,
        model_version_id=None,
    )


def growthbook_features() -> dict[str, Any]:
    """The same rule as a GrowthBook feature: forced rules first, then an experiment split."""
    treated = EXPOSURE_BP / 10_000
    holdout = HOLDOUT_BP / 10_000
    return {
        "ai-content": {
            "defaultValue": "excluded",
            "rules": [
                {"condition": {"segments": {"$elemMatch": {"$eq": EXCLUDE}}}, "force": "excluded"},
                {"condition": {"id": {"$in": ALLOW_LIST}}, "force": "treatment"},
                {"condition": {"beta": True}, "force": "treatment"},
                {
                    "condition": {
                        "segments": {"$elemMatch": {"$eq": INCLUDE}},
                        "plan": {"$in": ["pro", "team"]},
                        "country": {"$ne": "Germany"},
                    },
                    "key": "ai-content",
                    "seed": "bench-5f2a9c",
                    "hashAttribute": "id",
                    "variations": ["treatment", "control", "holdout"],
                    "weights": [treated, 1 - treated - holdout, holdout],
                    "coverage": 1.0,
                },
            ],
        }
    }


def sdk_attributes(frame: ContactFrame, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        segments = [s for s, mask in frame.segments.items() if mask[i]]
        out.append(
            {
                "id": int(frame.ids[i]),
                "plan": str(frame.attributes["plan"][i]),
                "beta": bool(frame.attributes["beta"][i]),
                "country": str(frame.country[i]) if frame.country is not None else "",
                "segments": segments,
            }
        )
    return out


def bench_growthbook(frame: ContactFrame, n: int) -> tuple[float, dict[str, int]]:
    from growthbook import GrowthBook

    logging.getLogger("growthbook").setLevel(logging.ERROR)
    attributes = sdk_attributes(frame, n)
    gb = GrowthBook(features=growthbook_features())
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for attrs in attributes:
        gb.set_attributes(attrs)
        value = str(gb.eval_feature("ai-content").value)
        counts[value] = counts.get(value, 0) + 1
    elapsed = time.perf_counter() - start
    gb.destroy()
    return elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--sdk-contacts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    frame = contacts(args.contacts)
    spec = spec_from_row(rollout_row())
    assign(spec, contacts(1000))  # warm up

    times, bucket_times = [], []
    result = assign(spec, frame)
    for _ in range(args.repeat):
        start = time.perf_counter()
        buckets(spec.salt, frame.ids)
        bucket_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = assign(spec, frame)
        times.append(time.perf_counter() - start)
    assert not result.failed, result.failed
    bulk_seconds = float(np.median(times))
    bulk_rate = args.contacts / bulk_seconds
    bucket_rate = args.contacts / float(np.median(bucket_times))
    counts = result.counts()

    sdk_n = min(args.sdk_contacts, args.contacts)
    sdk_seconds, sdk_counts = bench_growthbook(frame, sdk_n)
    sdk_rate = sdk_n / sdk_seconds
    ratio = bulk_rate / sdk_rate

    print(f"contacts                 {args.contacts:>12,}")
    print(f"mailramp assign (bulk)   {bulk_seconds * 1000:>12.1f} ms   {bulk_rate:>14,.0f} contacts/s")
    print(f"  of which bucketing     {'':>12}      {bucket_rate:>14,.0f} contacts/s (alone)")
    print(f"  arms                   {counts}")
    print(
        f"GrowthBook SDK {sdk_n:,} contacts one by one: {sdk_seconds:.2f} s   {sdk_rate:>14,.0f} contacts/s"
    )
    print(f"  extrapolated to {args.contacts:,}: {args.contacts / sdk_rate:.1f} s")
    print(f"  arms                   {sdk_counts}")
    print(f"ratio (mailramp / SDK)   {ratio:>12,.1f}x   targets: >= 2,000,000 contacts/s and >= 20x")
    figures = {
        "contacts": args.contacts,
        "bulk_seconds": round(bulk_seconds, 4),
        "bulk_contacts_per_s": round(bulk_rate),
        "bucketing_contacts_per_s": round(bucket_rate),
        "sdk_contacts": sdk_n,
        "sdk_seconds": round(sdk_seconds, 3),
        "sdk_contacts_per_s": round(sdk_rate),
        "ratio": round(ratio, 1),
        "meets_targets": bulk_rate >= 2_000_000 and ratio >= 20,
        "arms": counts,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    emit(figures)


if __name__ == "__main__":
    main()
