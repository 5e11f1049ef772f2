"""What every recommender estimator shares: top-k selection, explanations, fitted-state checks.

An estimator is fitted on a sparse user x item matrix X (see `matrix.py`) and scores any matrix with
the same columns: a row is one contact's history, so contacts unseen at training time are scored
without refitting ("fold-in"). `score` returns dense float32 scores; `recommend` the top k columns.
`explain` names, for each recommendation, the column of the history item that contributed most
(`REASON_OWN` when it is the contact's own past item, `REASON_POPULAR` when history played no part).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

REASON_POPULAR = -1  # "popular ..." : no history item behind it
REASON_OWN = -2  # "you bought this before"


def as_csr(X: Any) -> sp.csr_matrix:
    matrix = sp.csr_matrix(X, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError("X must be a 2-d users x items matrix")
    return matrix


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (n, k) of the k highest scores per row, best first, and their scores.

    Ties are broken by the lower column index, so results are reproducible. Finds each row's k-th
    largest value with `np.partition` (values only: several times faster than `argpartition`),
    then sorts just the entries at or above it.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if k <= 0 or n_rows == 0:
        return np.empty((n_rows, max(k, 0)), dtype=np.int64), np.empty(
            (n_rows, max(k, 0)), dtype=scores.dtype
        )
    kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
    rows, cols = np.nonzero(scores >= kth[:, None])
    values = scores[rows, cols]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    keep = rank < k
    return cols[keep].reshape(n_rows, k).astype(np.int64), values[keep].reshape(n_rows, k)


def row_normalize_max(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its maximum (rows whose maximum is <= 0 are left as they are)."""
    peak = scores.max(axis=1, keepdims=True)
    return np.divide(scores, peak, out=scores.copy(), where=peak > 0)


class RecommenderBase(BaseEstimator):
    """Subclasses implement `fit(X, y=None)` and `score(X)`; they may override `explain`."""

    _fitted_attr = "n_items_"

    def score(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def recommend(
        self, X: Any, k: int = 10, *, exclude_seen: bool = False, **score_params: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k column indices and scores per row of X. Repeat purchases are allowed by default."""
        matrix = self._check_X(X)
        scores = self.score(matrix, **score_params)
        if exclude_seen:
            rows, cols = matrix.nonzero()
            scores[rows, cols] = -np.inf
        return top_k(scores, k)

    def explain(self, X: Any, items: np.ndarray) -> np.ndarray:
        """For each recommended column in `items` (n, k): the history column behind it, or a REASON_*."""
        check_is_fitted(self, self._fitted_attr)
        return np.full(np.shape(items), REASON_POPULAR, dtype=np.int64)

    def _check_X(self, X: Any) -> sp.csr_matrix:
        check_is_fitted(self, self._fitted_attr)
        matrix = as_csr(X)
        if matrix.shape[1] != self.n_items_:
            raise ValueError(
                f"X has {matrix.shape[1]} item columns; this model was fitted on {self.n_items_}"
            )
        return matrix

    n_items_: int


def explain_item_item(
    X: sp.csr_matrix, items: np.ndarray, weight: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """For item-item models (score = X @ W): argmax over history j of X[u, j] * W[j, i].

    Vectorized over all (user, recommendation) pairs; `weight(j, i)` returns W[j, i] elementwise.
    Recommendations the contact already has are explained as REASON_OWN.
    """
    n_users, k = items.shape
    result = np.full((n_users, k), REASON_POPULAR, dtype=np.int64)
    if n_users == 0 or k == 0 or X.nnz == 0:
        return result
    csr = sp.csr_matrix(X)
    csr.sort_indices()
    counts = np.diff(csr.indptr)
    users = np.repeat(np.arange(n_users), counts)
    # contribution[e, s]: history entry e (of user users[e]) towards that user's recommendation s
    contribution = csr.data[:, None] * weight(np.repeat(csr.indices, k), items[users].ravel()).reshape(
        csr.nnz, k
    )
    filled = np.flatnonzero(counts)
    starts = csr.indptr[:-1][filled]
    best = np.maximum.reduceat(contribution, starts, axis=0)  # (users with history, k)
    entry = np.arange(csr.nnz)[:, None]
    is_best = contribution == np.repeat(best, counts[filled], axis=0)
    first = np.minimum.reduceat(np.where(is_best, entry, csr.nnz), starts, axis=0)
    chosen = csr.indices[np.minimum(first, csr.nnz - 1)]
    result[filled] = np.where(best > 0, chosen, REASON_POPULAR)
    # the contact's own past items
    rows = np.repeat(np.arange(n_users), k)
    own = np.asarray(X[rows, items.ravel()]).reshape(n_users, k) > 0
    result[own] = REASON_OWN
    return result
