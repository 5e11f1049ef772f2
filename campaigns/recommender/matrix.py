"""The user x item matrix every estimator is fitted on, built from an interaction log.

Pure numpy/scipy: the same code builds the matrix from the database (training, scoring) and from the
Online Retail CSV (offline evaluation, benchmark). A cell counts the days on which the contact
interacted with the item (several lines of one order count once), each day weighted by its
strongest kind (a purchase counts more than a click) and, optionally, by its age (exponential decay
with `half_life_days`). On Online Retail, distinct days beat raw line counts and recency decay does
not help (see the evaluation in the README), so decay is off by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

KIND_WEIGHTS: Mapping[str, float] = {"purchase": 1.0, "conversion": 1.0, "click": 0.5, "view": 0.2}
DEFAULT_HALF_LIFE_DAYS: float | None = None


@dataclass(frozen=True)
class InteractionLog:
    """Parallel arrays, one entry per interaction. `age_days` is measured from the scoring reference time."""

    user_ids: np.ndarray  # int64 external ids (contact ids, CustomerID)
    item_ids: np.ndarray  # int64 external ids (item ids)
    weights: np.ndarray  # float, kind weight of each interaction
    age_days: np.ndarray  # float >= 0

    def __len__(self) -> int:
        return len(self.user_ids)

    @classmethod
    def from_rows(
        cls,
        user_ids: Sequence[int],
        item_ids: Sequence[int],
        kinds: Sequence[str] | None = None,
        age_days: Sequence[float] | None = None,
    ) -> InteractionLog:
        n = len(user_ids)
        weights = (
            np.array([KIND_WEIGHTS.get(k, 0.0) for k in kinds], dtype=np.float64)
            if kinds is not None
            else np.ones(n)
        )
        ages = np.asarray(age_days, dtype=np.float64) if age_days is not None else np.zeros(n)
        return cls(
            user_ids=np.asarray(user_ids, dtype=np.int64),
            item_ids=np.asarray(item_ids, dtype=np.int64),
            weights=weights,
            age_days=np.maximum(ages, 0.0),
        )


def decayed_weights(log: InteractionLog, half_life_days: float | None) -> np.ndarray:
    if not half_life_days:
        return log.weights
    return log.weights * np.exp2(-log.age_days / half_life_days)


def user_item_matrix(
    log: InteractionLog,
    item_index: np.ndarray,
    user_index: np.ndarray | None = None,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """CSR matrix (users x items) and the user ids of its rows.

    `item_index` fixes the columns (a model's items, sorted); interactions with other items are
    dropped. `user_index` fixes the rows (sorted unique ids; absent users get empty rows); by default
    the rows are the distinct users of the log, sorted.
    """
    item_index = np.asarray(item_index, dtype=np.int64)
    if user_index is None:
        user_index = np.unique(log.user_ids)
    user_index = np.asarray(user_index, dtype=np.int64)
    cols = _positions(item_index, log.item_ids)
    rows = _positions(user_index, log.user_ids)
    keep = np.flatnonzero((cols >= 0) & (rows >= 0))
    values = decayed_weights(log, half_life_days)
    # one entry per (user, item, day): the strongest interaction of that day
    day = np.floor(log.age_days[keep]).astype(np.int64)
    order = np.lexsort((-values[keep], day, cols[keep], rows[keep]))
    picked = keep[order]
    first = np.ones(len(picked), dtype=bool)
    first[1:] = (
        (rows[picked][1:] != rows[picked][:-1])
        | (cols[picked][1:] != cols[picked][:-1])
        | (day[order][1:] != day[order][:-1])
    )
    picked = picked[first]
    matrix = sp.csr_matrix(
        (values[picked].astype(np.float32), (rows[picked], cols[picked])),
        shape=(len(user_index), len(item_index)),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix, user_index


def _positions(index: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each id in the sorted `index`, -1 where absent."""
    if len(index) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.searchsorted(index, ids)
    pos = np.minimum(pos, len(index) - 1)
    return np.where(index[pos] == ids, pos, -1).astype(np.int64)
