"""Top-k ranking metrics on plain arrays: precision, recall, NDCG, hit rate, catalog coverage.

`recommended` is (n_users, k) item indices, best first; `relevant` one set of item indices per user
(what they bought in the test period). Binary relevance; repeat purchases count as hits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class RankingMetrics:
    precision: float
    recall: float
    ndcg: float
    hit_rate: float
    coverage: float
    users: int
    k: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def hits_matrix(recommended: np.ndarray, relevant: Sequence[set[int]]) -> np.ndarray:
    hits = np.zeros(recommended.shape, dtype=bool)
    for row, items in enumerate(relevant):
        if items:
            hits[row] = [int(i) in items for i in recommended[row]]
    return hits


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Hits in the top k divided by k (not by the list length: a short list is not rewarded)."""
    return np.asarray(hits[:, :k].sum(axis=1) / k, dtype=np.float64)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1), dtype=np.float64)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG with gains 1/log2(rank + 1) over the ideal DCG of min(|relevant|, k) hits."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_counts = np.minimum(n_relevant, k)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_counts]
    return np.asarray(np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0), dtype=np.float64)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def catalog_coverage(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-k list."""
    if n_items <= 0:
        return 0.0
    return float(len(np.unique(recommended[:, :k])) / n_items)


def evaluate(
    recommended: np.ndarray, relevant: Sequence[set[int]], n_items: int, k: int = 10
) -> RankingMetrics:
    hits = hits_matrix(recommended[:, :k], relevant)
    n_relevant = np.array([len(r) for r in relevant], dtype=np.int64)
    return RankingMetrics(
        precision=float(precision_at_k(hits, k).mean()) if len(relevant) else 0.0,
        recall=float(recall_at_k(hits, n_relevant, k).mean()) if len(relevant) else 0.0,
        ndcg=float(ndcg_at_k(hits, n_relevant, k).mean()) if len(relevant) else 0.0,
        hit_rate=float(hit_rate_at_k(hits, k).mean()) if len(relevant) else 0.0,
        coverage=catalog_coverage(recommended, n_items, k),
        users=len(relevant),
        k=k,
    )
