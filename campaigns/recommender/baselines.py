"""The two baselines: popularity (the control content's best-sellers) and own past items."""

from __future__ import annotations

from typing import Any

import numpy as np

from campaigns.recommender.base import REASON_OWN, REASON_POPULAR, RecommenderBase, as_csr


class PopularityRecommender(RecommenderBase):
    """Best-sellers: the share of users who interacted with each item.

    With `groups` (one label per row of X, e.g. the contact's country) it also learns the best-sellers
    of each group, shrunk towards the global ones by `shrinkage` pseudo-users, so a small country
    gets its own taste without its few customers deciding everything.
    """

    def __init__(self, shrinkage: float = 20.0) -> None:
        self.shrinkage = shrinkage

    def fit(self, X: Any, y: Any = None, *, groups: Any = None) -> PopularityRecommender:
        matrix = as_csr(X)
        n_users, self.n_items_ = matrix.shape
        binary = (matrix > 0).astype(np.float64)
        counts = np.asarray(binary.sum(axis=0)).ravel()
        self.popularity_ = (counts / max(n_users, 1)).astype(np.float32)
        self.groups_ = np.array([], dtype=object)
        self.group_popularity_ = np.zeros((0, self.n_items_), dtype=np.float32)
        if groups is not None:
            labels = np.asarray(groups, dtype=object)
            if len(labels) != n_users:
                raise ValueError(f"groups has {len(labels)} labels for {n_users} rows of X")
            self.groups_, inverse = np.unique(labels.astype(str), return_inverse=True)
            table = np.zeros((len(self.groups_), self.n_items_), dtype=np.float64)
            coo = binary.tocoo()
            np.add.at(table, (inverse[coo.row], coo.col), coo.data)
            sizes = np.bincount(inverse, minlength=len(self.groups_)).astype(np.float64)
            shrunk = (table + self.shrinkage * self.popularity_) / (sizes + self.shrinkage)[:, None]
            self.group_popularity_ = shrunk.astype(np.float32)
        return self

    def score(self, X: Any, *, groups: Any = None) -> np.ndarray:
        matrix = self._check_X(X)
        scores = np.tile(self.popularity_, (matrix.shape[0], 1))
        if groups is not None and len(self.groups_):
            labels = np.asarray(groups, dtype=object).astype(str)
            pos = np.searchsorted(self.groups_, labels)
            pos = np.minimum(pos, len(self.groups_) - 1)
            known = self.groups_[pos] == labels
            scores[known] = self.group_popularity_[pos[known]]
        return scores

    def explain(self, X: Any, items: np.ndarray) -> np.ndarray:
        return np.full(np.shape(items), REASON_POPULAR, dtype=np.int64)


class RepeatPurchaseRecommender(RecommenderBase):
    """The contact's own past items, strongest (recency-weighted) first; popularity fills the rest.

    On Online Retail most of what a customer buys next they have bought before, which pure
    collaborative filtering does not reward. `binary=True` ignores how often and how recently.
    """

    def __init__(self, binary: bool = False) -> None:
        self.binary = binary

    def fit(self, X: Any, y: Any = None) -> RepeatPurchaseRecommender:
        matrix = as_csr(X)
        self.n_items_ = matrix.shape[1]
        counts = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        self.popularity_ = (counts / max(matrix.shape[0], 1)).astype(np.float32)
        return self

    def score(self, X: Any) -> np.ndarray:
        matrix = self._check_X(X)
        own = (matrix > 0).astype(np.float32) if self.binary else matrix
        scores = own.toarray()
        # popularity only orders what the contact never had: it stays below any own item
        scores += (1e-3 * self.popularity_ / max(float(self.popularity_.max()), 1e-12)).astype(np.float32)
        own_rows, own_cols = matrix.nonzero()
        scores[own_rows, own_cols] += 1.0
        return scores

    def explain(self, X: Any, items: np.ndarray) -> np.ndarray:
        matrix = self._check_X(X)
        n, k = np.shape(items)
        rows = np.repeat(np.arange(n), k)
        own = np.asarray(matrix[rows, np.ravel(items)]).reshape(n, k) > 0
        return np.where(own, REASON_OWN, REASON_POPULAR).astype(np.int64)
