"""Batch scoring: a model version's top items for contacts, from their current histories.

Histories are read at scoring time, so a contact's purchases since training count ("fold-in"), and
contacts the model never saw are scored like anyone else. Contacts with no history on the model's
items are left out: the lookup gives them the live best-sellers of their country.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from campaigns.recommender import history
from campaigns.recommender.artifact import ModelArtifact
from campaigns.recommender.base import REASON_OWN
from campaigns.recommender.matrix import user_item_matrix

ROWS_PER_STEP = 2000  # dense score block: 2,000 x 4,070 float32 = 33 MB


@dataclass(frozen=True)
class Scored:
    item_id: int
    score: float
    own: bool  # the contact's own past item
    because_item_id: int | None  # the history item that contributed most, if any


def score_contacts(
    session: Session,
    model: ModelArtifact,
    contact_ids: Sequence[int],
    n: int,
    now: datetime,
) -> dict[int, list[Scored]]:
    ids = np.unique(np.asarray(contact_ids, dtype=np.int64))
    log = history.histories(session, [int(c) for c in ids], now)
    matrix, users = user_item_matrix(log, model.item_ids, user_index=ids, half_life_days=model.half_life_days)
    warm = np.flatnonzero(np.diff(matrix.indptr) > 0)
    if len(warm) == 0:
        return {}
    matrix = matrix[warm]
    users = users[warm]
    groups: np.ndarray | None = None
    if _takes_groups(model):
        country_of = history.countries(session, [int(u) for u in users])
        groups = np.array([country_of.get(int(u), "") for u in users], dtype=object)
    return rank(model, matrix, users, n, groups)


def rank(
    model: ModelArtifact,
    matrix: object,
    users: np.ndarray,
    n: int,
    groups: np.ndarray | None = None,
) -> dict[int, list[Scored]]:
    """Top n per row of a users x model-items matrix, with the reason behind each."""
    from campaigns.recommender.base import as_csr

    csr = as_csr(matrix)
    result: dict[int, list[Scored]] = {}
    estimator = model.estimator
    for start in range(0, csr.shape[0], ROWS_PER_STEP):
        block = csr[start : start + ROWS_PER_STEP]
        params: dict[str, Any] = {} if groups is None else {"groups": groups[start : start + ROWS_PER_STEP]}
        idx, scores = estimator.recommend(block, n, **params)
        reasons = estimator.explain(block, idx)
        for row in range(block.shape[0]):
            entries = []
            for col, score, reason in zip(idx[row], scores[row], reasons[row], strict=True):
                if not np.isfinite(score) or score <= 0:
                    continue
                entries.append(
                    Scored(
                        item_id=int(model.item_ids[col]),
                        score=round(float(score), 6),
                        own=bool(reason == REASON_OWN),
                        because_item_id=int(model.item_ids[reason]) if reason >= 0 else None,
                    )
                )
            result[int(users[start + row])] = entries
    return result


def _takes_groups(model: ModelArtifact) -> bool:
    return "groups" in inspect.signature(model.estimator.score).parameters
