"""The production model: the contact's own past items blended with discovery and local best-sellers.

On Online Retail, what a customer buys next is mostly what they bought before: the own-items part
ranks the contact's past items by how many days they bought each (`own_power` flattens that) times
the item's repeat rate (the share of its buyers who bought it on more than one day, learned in
`fit`: refills and staples are re-bought, a one-off gift is not). Collaborative filtering (EASE by
default) adds what they have not bought yet but customers like them have; popularity within their
country breaks ties. Each part is scaled to [0, 1] per contact before weighting, so the weights mean
the same for every contact. Defaults were tuned on a validation split inside the training period
(train before 2011-06-01, validate June to August), never on the test period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from campaigns.recommender.base import REASON_OWN, RecommenderBase, as_csr
from campaigns.recommender.baselines import PopularityRecommender
from campaigns.recommender.collaborative import EASERecommender


class BlendRecommender(RecommenderBase):
    def __init__(
        self,
        discovery: RecommenderBase | None = None,
        own_weight: float = 1.0,
        own_power: float = 1.0,
        discovery_weight: float = 0.4,
        popularity_weight: float = 0.1,
        shrinkage: float = 20.0,
    ) -> None:
        self.discovery = discovery
        self.own_weight = own_weight
        self.own_power = own_power
        self.discovery_weight = discovery_weight
        self.popularity_weight = popularity_weight
        self.shrinkage = shrinkage

    def fit(self, X: Any, y: Any = None, *, groups: Any = None) -> BlendRecommender:
        matrix = as_csr(X)
        self.n_items_ = matrix.shape[1]
        template = self.discovery if self.discovery is not None else EASERecommender(rank=128)
        self.discovery_ = clone(template).fit(matrix)
        buyers = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        repeaters = np.asarray((matrix > 1.0).sum(axis=0), dtype=np.float64).ravel()
        # smoothed towards a low prior so an item with two buyers cannot claim a 100 % repeat rate
        self.repeat_rate_ = ((repeaters + 1.0) / (buyers + 5.0)).astype(np.float32)
        self.popularity_ = PopularityRecommender(shrinkage=self.shrinkage).fit(matrix, groups=groups)
        return self

    def score(self, X: Any, *, groups: Any = None) -> np.ndarray:
        matrix = self._check_X(X)
        n_rows = matrix.shape[0]
        if self.discovery_weight:
            scores = self.discovery_.score(matrix)
            _scale_rows(scores, self.discovery_weight)
        else:
            scores = np.zeros(matrix.shape, dtype=np.float32)
        if self.popularity_weight:
            scores += self._popular_rows(n_rows, groups)
        # own items: only the contact's own cells, scaled to [0, own_weight] per contact
        own = matrix.copy()
        own.data = np.power(own.data, self.own_power, dtype=np.float32) * self.repeat_rate_[own.indices]
        counts = np.diff(own.indptr)
        filled = counts > 0
        row_peak = np.ones(n_rows, dtype=np.float32)
        if own.nnz:
            row_peak[filled] = np.maximum.reduceat(own.data, own.indptr[:-1][filled])
        rows = np.repeat(np.arange(n_rows), counts)
        scores[rows, own.indices] += self.own_weight * own.data / np.maximum(row_peak[rows], 1e-12)
        return scores

    def _popular_rows(self, n_rows: int, groups: Any) -> np.ndarray:
        """popularity_weight x each contact's (country's) best-seller scores, scaled to [0, 1]."""
        model = self.popularity_
        overall = self.popularity_weight * model.popularity_ / max(float(model.popularity_.max()), 1e-12)
        if groups is None or not len(model.groups_):
            return np.broadcast_to(overall, (n_rows, self.n_items_))
        table = model.group_popularity_ / np.maximum(
            model.group_popularity_.max(axis=1, keepdims=True), 1e-12
        )
        table = np.vstack([self.popularity_weight * table, overall[None, :]]).astype(np.float32)
        labels = np.asarray(groups, dtype=object).astype(str)
        pos = np.minimum(np.searchsorted(model.groups_, labels), len(model.groups_) - 1)
        pos = np.where(model.groups_[pos] == labels, pos, len(model.groups_))
        return table[pos]

    def explain(self, X: Any, items: np.ndarray) -> np.ndarray:
        matrix = self._check_X(X)
        reasons = self.discovery_.explain(matrix, items)
        n, k = np.shape(items)
        own = np.asarray(matrix[np.repeat(np.arange(n), k), np.ravel(items)]).reshape(n, k) > 0
        reasons[own] = REASON_OWN
        return reasons


def _scale_rows(scores: np.ndarray, weight: float) -> None:
    """In place: each row times weight / its maximum (rows whose maximum is <= 0: zeroed)."""
    peak = scores.max(axis=1)
    factor = np.where(peak > 0, weight / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)
    scores *= factor[:, None]
