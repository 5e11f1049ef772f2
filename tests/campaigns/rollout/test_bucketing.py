"""The vectorized murmur3 equals mmh3 bit for bit; buckets are stable and in range."""

from __future__ import annotations

import mmh3
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.rollout.bucketing import BUCKETS, bucket, buckets, hashes


def _reference(salt: str, ids: np.ndarray) -> np.ndarray:
    return np.array([mmh3.hash(f"{salt}:{int(i)}", seed=0, signed=False) for i in ids], dtype=np.uint32)


def test_every_digit_length_and_salt_length_matches_mmh3() -> None:
    # keys of every length mod 4 (salt lengths 0-7 x ids of 1-19 digits), plus int64 edges
    ids = np.array([0, 5, 42, 999, 1000] + [10**k + 7 for k in range(1, 19)] + [2**63 - 1], dtype=np.int64)
    for salt in ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "ünïcødé"]:
        assert (hashes(salt, ids) == _reference(salt, ids)).all(), salt


@settings(max_examples=60, deadline=None)
@given(
    salt=st.text(max_size=24),
    ids=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=40),
)
def test_hashes_equal_mmh3_for_any_salt_and_id(salt: str, ids: list[int]) -> None:
    array = np.array(ids, dtype=np.int64)
    assert (hashes(salt, array) == _reference(salt, array)).all()


def test_bucket_is_the_design_formula() -> None:
    # worked out with mmh3 directly: mmh3.hash("abc:1", 0, signed=False) % 10_000
    assert bucket("abc", 1) == mmh3.hash("abc:1", seed=0, signed=False) % 10_000
    ids = np.arange(1, 5001)
    vector = buckets("spring", ids)
    assert vector.dtype == np.int32
    assert vector.min() >= 0 and vector.max() < BUCKETS
    assert [bucket("spring", int(i)) for i in ids[:200]] == vector[:200].tolist()


def test_order_and_grouping_do_not_change_buckets() -> None:
    ids = np.array([123456789, 3, 10**12, 77, 3], dtype=np.int64)
    forward = buckets("s", ids)
    assert (buckets("s", ids[::-1]) == forward[::-1]).all()
    assert forward[1] == forward[4]
    assert buckets("s", np.array([], dtype=np.int64)).shape == (0,)
