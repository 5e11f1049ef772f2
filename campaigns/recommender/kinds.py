"""The model kinds the registry can train, by name, with their default parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from campaigns.errors import InputError
from campaigns.recommender.base import RecommenderBase
from campaigns.recommender.baselines import PopularityRecommender, RepeatPurchaseRecommender
from campaigns.recommender.blend import BlendRecommender
from campaigns.recommender.collaborative import EASERecommender, ItemKNNRecommender

KINDS: dict[str, Callable[[], RecommenderBase]] = {
    "popularity": PopularityRecommender,
    "repeat": RepeatPurchaseRecommender,
    "item_knn": ItemKNNRecommender,
    "ease": EASERecommender,
    "blend": lambda: BlendRecommender(discovery=EASERecommender(rank=128)),
}
MATRIX_PARAMS = ("half_life_days",)  # how the matrix is built, not estimator parameters


def make_estimator(kind: str, params: dict[str, Any] | None = None) -> RecommenderBase:
    """An unfitted estimator; `params` may set nested ones (`discovery__l2`)."""
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}", where="kind")
    estimator = KINDS[kind]()
    given = {k: v for k, v in (params or {}).items() if k not in MATRIX_PARAMS}
    try:
        estimator.set_params(**given)
    except ValueError as exc:
        raise InputError(str(exc), where="params") from exc
    return estimator


def takes_groups(estimator: RecommenderBase) -> bool:
    return "groups" in inspect.signature(estimator.fit).parameters
