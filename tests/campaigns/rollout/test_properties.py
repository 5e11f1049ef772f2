"""Property tests of sticky assignment: monotone ramps, a fixed holdout, binomial splits, independent salts."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.rollout.assignment import ContactFrame, RolloutSpec, assign

N = 20_000
IDS = np.arange(1, N + 1, dtype=np.int64)
FRAME = ContactFrame(ids=IDS)
salts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=16)
bp = st.integers(min_value=0, max_value=10_000)
holdouts = st.integers(min_value=0, max_value=5_000)


def _arms(salt: str, exposure: int, holdout: int) -> np.ndarray:
    spec = RolloutSpec(
        rollout_id=1,
        salt=salt,
        state="ramping",
        stage_kind="percent",
        exposure_bp=exposure,
        holdout_bp=holdout,
    )
    return assign(spec, FRAME).arms


@settings(max_examples=40, deadline=None)
@given(salt=salts, a=bp, b=bp, holdout=holdouts)
def test_raising_exposure_only_adds_and_holdout_never_moves(salt: str, a: int, b: int, holdout: int) -> None:
    low, high = sorted((a, b))
    before, after = _arms(salt, low, holdout), _arms(salt, high, holdout)
    assert not ((before == "treatment") & (after != "treatment")).any()  # nobody loses treatment
    assert ((before == "holdout") == (after == "holdout")).all()  # the holdout is the same set
    changed = before != after
    assert (before[changed] == "control").all() and (after[changed] == "treatment").all()


@settings(max_examples=25, deadline=None)
@given(salt=salts, a=bp, b=bp)
def test_lowering_exposure_removes_the_most_recently_added_first(salt: str, a: int, b: int) -> None:
    low, high = sorted((a, b))
    spec = RolloutSpec(rollout_id=1, salt=salt, state="ramping", stage_kind="percent", exposure_bp=high)
    result = assign(spec, FRAME)
    lowered = _arms(salt, low, 0)
    removed = (result.arms == "treatment") & (lowered != "treatment")
    kept = (result.arms == "treatment") & (lowered == "treatment")
    # the removed contacts all have higher buckets than the kept ones: they were added last
    if removed.any() and kept.any():
        assert result.buckets[removed].min() > result.buckets[kept].max()


def _within(count: int, n: int, p: float, sigmas: float = 6.0) -> bool:
    p = min(max(p, 0.0), 1.0)  # 1 - a - b can round below zero
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return abs(count - mean) <= sigmas * sd + 1


@settings(max_examples=40, deadline=None)
@given(salt=salts, exposure=bp, holdout=holdouts)
def test_split_proportions_are_binomial(salt: str, exposure: int, holdout: int) -> None:
    arms = _arms(salt, exposure, holdout)
    treated = min(exposure, 10_000 - holdout) / 10_000
    assert _within(int((arms == "treatment").sum()), N, treated)
    assert _within(int((arms == "holdout").sum()), N, holdout / 10_000)
    assert _within(int((arms == "control").sum()), N, 1 - treated - holdout / 10_000)


@settings(max_examples=30, deadline=None)
@given(first=salts, second=salts, a=st.integers(500, 9_500), b=st.integers(500, 9_500))
def test_two_salts_are_independent(first: str, second: str, a: int, b: int) -> None:
    if first == second:
        return
    x, y = _arms(first, a, 0) == "treatment", _arms(second, b, 0) == "treatment"
    # P(both) = P(x) P(y) within binomial bounds
    assert _within(int((x & y).sum()), N, (a / 10_000) * (b / 10_000))
    # and the correlation of the two buckets is near zero
    bx = assign(RolloutSpec(rollout_id=1, salt=first), FRAME).buckets
    by = assign(RolloutSpec(rollout_id=2, salt=second), FRAME).buckets
    assert abs(np.corrcoef(bx, by)[0, 1]) < 6 / math.sqrt(N)
