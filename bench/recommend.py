"""Recommender benchmark: fit time on the full Online Retail data, top-10 scoring throughput for
1,000,000 synthetic contacts over the real catalog, and peak memory.

Synthetic contacts look like the real customers: each one's number of distinct items is drawn from
the real customers' distribution (mean about 61, median 35), the items from the real item
popularity, the purchase-day counts from the real cells, the country from the real country mix.
Scoring is what `ensure_scored` does per step: the production blend's top 10 for a block of
contacts (the reasons, `explain`, are timed separately on the first 100,000).

    .venv/bin/python bench/recommend.py [--data PATH] [--contacts 1000000] [--threads 2]

Targets on a 2-core machine: fit < 30 s, scoring 1M < 60 s, peak memory < 4 GiB. The last line is
one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit
from campaigns.recommender import retail
from campaigns.recommender.kinds import make_estimator
from campaigns.recommender.matrix import InteractionLog, user_item_matrix

BLOCK = 4000


def synthetic_block(
    rng: np.random.Generator,
    n: int,
    lengths: np.ndarray,
    item_p: np.ndarray,
    cell_values: np.ndarray,
    countries: np.ndarray,
) -> tuple[sp.csr_matrix, np.ndarray]:
    sizes = rng.choice(lengths, size=n)
    rows = np.repeat(np.arange(n), sizes)
    cols = rng.choice(len(item_p), size=len(rows), p=item_p)
    values = rng.choice(cell_values, size=len(rows)).astype(np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n, len(item_p)), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix, rng.choice(countries, size=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="online_retail.csv.gz (default: MAILRAMP_DEMO_DATA or ../shared/data)"
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="scoring threads (blocks in parallel)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    data = retail.load(args.data)
    load_s = time.perf_counter() - started
    reference = float(data.days.max()) + 1.0
    log = InteractionLog(data.customers, data.items, np.ones(len(data)), reference - data.days)
    started = time.perf_counter()
    item_ids = np.arange(len(data.skus), dtype=np.int64)
    matrix, users = user_item_matrix(log, item_ids)
    groups = np.array([data.country_of[int(u)] for u in users], dtype=object)
    matrix_s = time.perf_counter() - started

    model = make_estimator("blend")
    started = time.perf_counter()
    model.fit(matrix, groups=groups)
    fit_s = time.perf_counter() - started
    print(f"data: {len(data):,} purchase lines, {matrix.shape[0]:,} customers x {matrix.shape[1]:,} items")
    print(f"load {load_s:.1f} s, matrix {matrix_s:.1f} s, fit (production blend) {fit_s:.1f} s")

    rng = np.random.default_rng(args.seed)
    lengths = np.diff(matrix.indptr)
    buyers = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
    item_p = buyers / buyers.sum()
    countries = groups

    blocks = []
    started = time.perf_counter()
    remaining = args.contacts
    while remaining > 0:
        n = min(BLOCK, remaining)
        blocks.append(synthetic_block(rng, n, lengths, item_p, matrix.data, countries))
        remaining -= n
    synth_s = time.perf_counter() - started
    nnz = sum(b[0].nnz for b in blocks)
    print(
        f"synthetic: {args.contacts:,} contacts, {nnz / args.contacts:.1f} distinct items each ({synth_s:.1f} s to generate)"
    )

    def score(block: tuple[sp.csr_matrix, np.ndarray]) -> int:
        idx, _ = model.recommend(block[0], 10, groups=block[1])
        return int(idx.shape[0])

    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    if args.threads > 1:
        with threadpool_limits(limits=1), ThreadPoolExecutor(args.threads) as pool:
            scored = sum(pool.map(score, blocks))
    else:
        scored = sum(map(score, blocks))
    score_s = time.perf_counter() - started
    rate = scored / score_s
    print(
        f"scoring top-10: {scored:,} contacts in {score_s:.1f} s ({rate:,.0f} contacts/s, {args.threads} threads)"
    )

    sample = blocks[: max(1, min(len(blocks), 100_000 // BLOCK))]
    started = time.perf_counter()
    explained = 0
    for block, country in sample:
        idx, _ = model.recommend(block, 10, groups=country)
        model.explain(block, idx)
        explained += block.shape[0]
    explain_s = time.perf_counter() - started
    explain_rate = explained / explain_s
    print(
        f"top-10 with reasons: {explained:,} contacts in {explain_s:.1f} s ({explain_rate:,.0f} contacts/s, 1 thread)"
    )

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak_mib:,.0f} MiB")
    verdict = {
        "fit_under_30s": fit_s < 30,
        "score_1m_under_60s": args.contacts >= 1_000_000 and score_s < 60,
        "memory_under_4gib": peak_mib < 4096,
    }
    print("targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in verdict.items()))
    emit(
        {
            "purchase_lines": len(data),
            "customers": int(matrix.shape[0]),
            "items": int(matrix.shape[1]),
            "load_s": round(load_s, 2),
            "fit_s": round(fit_s, 2),
            "contacts": scored,
            "items_per_contact": round(nnz / args.contacts, 1),
            "score_s": round(score_s, 2),
            "contacts_per_s": round(rate),
            "threads": args.threads,
            "explain_contacts_per_s": round(explain_rate),
            "peak_mib": round(peak_mib),
            **verdict,
        }
    )


if __name__ == "__main__":
    main()
