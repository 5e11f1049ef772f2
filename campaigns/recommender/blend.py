"""The production model: the contact's own past items blended with discovery and local best-sellers.

On Online Retail, what a customer buys next is mostly what they bought before, weighted by how often
and how recently (the decayed weights of the matrix); collaborative filtering (EASE by default)
finds the items they have not bought yet but customers like them have; popularity within their
country breaks ties and serves contacts with little history. Each part is scaled to [0, 1] per
contact before weighting, so the weights mean the same for every contact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from campaigns.recommender.base import REASON_OWN, RecommenderBase, as_csr, row_normalize_max
from campaigns.recommender.baselines import PopularityRecommender
from campaigns.recommender.collaborative import EASERecommender


class BlendRecommender(RecommenderBase):
    def __init__(
        self,
        discovery: RecommenderBase | None = None,
        own_weight: float = 1.0,
        own_power: float = 0.5,
        discovery_weight: float = 0.5,
        popularity_weight: float = 0.05,
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
        template = self.discovery if self.discovery is not None else EASERecommender()
        self.discovery_ = clone(template).fit(matrix)
        self.popularity_ = PopularityRecommender(shrinkage=self.shrinkage).fit(matrix, groups=groups)
        return self

    def score(self, X: Any, *, groups: Any = None) -> np.ndarray:
        matrix = self._check_X(X)
        own = matrix.copy()
        own.data = np.power(own.data, self.own_power, dtype=np.float32)
        scores = self.own_weight * row_normalize_max(own.toarray())
        if self.discovery_weight:
            scores += self.discovery_weight * row_normalize_max(self.discovery_.score(matrix))
        if self.popularity_weight:
            scores += self.popularity_weight * row_normalize_max(
                self.popularity_.score(matrix, groups=groups)
            )
        return scores.astype(np.float32, copy=False)

    def explain(self, X: Any, items: np.ndarray) -> np.ndarray:
        matrix = self._check_X(X)
        reasons = self.discovery_.explain(matrix, items)
        n, k = np.shape(items)
        own = np.asarray(matrix[np.repeat(np.arange(n), k), np.ravel(items)]).reshape(n, k) > 0
        reasons[own] = REASON_OWN
        return reasons
