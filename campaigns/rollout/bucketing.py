"""Buckets: the only source of randomness in assignment (pure; numpy and mmh3 only).

    bucket = mmh3_32(f"{salt}:{contact_id}", seed=0, unsigned) % 10_000

`bucket` is the reference (one call to mmh3 per contact); `buckets` computes the same numbers for an
array of contact ids at numpy speed. It implements MurmurHash3 x86_32 over the UTF-8 bytes of
``f"{salt}:{id}"`` with uint32 arithmetic and is equal to mmh3 bit for bit (a test compares both on
golden vectors and on random ids):

- the salt prefix is the same for every contact, so the hash state after its full 4-byte blocks is
  computed once, in Python;
- contact ids are grouped by their number of decimal digits, so within a group every key has the
  same length and the remaining blocks are whole uint32 columns built from digit arithmetic;
- negative ids (never produced by the database, but allowed by the signature) go through mmh3.
"""

from __future__ import annotations

import mmh3
import numpy as np
import numpy.typing as npt

BUCKETS = 10_000  # basis points: bucket b covers [b, b+1) / 10_000 of all contacts

_C1 = np.uint32(0xCC9E2D51)
_C2 = np.uint32(0x1B873593)
_M5 = np.uint32(5)
_N1 = np.uint32(0xE6546B64)
_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)
_MASK = 0xFFFFFFFF
_MAX_DIGITS = 19  # int64


def bucket(salt: str, contact_id: int) -> int:
    """The reference definition of a contact's bucket in a rollout with this salt."""
    return int(mmh3.hash(f"{salt}:{contact_id}", seed=0, signed=False)) % BUCKETS


# -- scalar murmur3 pieces, used once per call for the constant salt prefix --------------------------


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _mix_block_scalar(h: int, k: int) -> int:
    k = (k * 0xCC9E2D51) & _MASK
    k = _rotl(k, 15)
    k = (k * 0x1B873593) & _MASK
    h ^= k
    h = _rotl(h, 13)
    return (h * 5 + 0xE6546B64) & _MASK


# -- vectorized murmur3 pieces -----------------------------------------------------------------------


def _rotl_v(x: npt.NDArray[np.uint32], r: int) -> npt.NDArray[np.uint32]:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _mix_k_v(k: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    k = k * _C1
    k = _rotl_v(k, 15)
    return k * _C2


def _mix_block_v(h: npt.NDArray[np.uint32], k: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    h = h ^ _mix_k_v(k)
    h = _rotl_v(h, 13)
    return h * _M5 + _N1


def _fmix_v(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    h = h ^ (h >> np.uint32(16))
    h = h * _F1
    h = h ^ (h >> np.uint32(13))
    h = h * _F2
    return h ^ (h >> np.uint32(16))


def _digit_count(ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Number of decimal digits of each non-negative id (0 has one digit)."""
    powers = 10 ** np.arange(1, _MAX_DIGITS, dtype=np.int64)
    return np.searchsorted(powers, ids, side="right").astype(np.int64) + 1


def _hash_group(
    h0: int, head: bytes, ids: npt.NDArray[np.int64], n_digits: int, total_len: int
) -> npt.NDArray[np.uint32]:
    """Hashes of `head + str(id)` for ids that all have `n_digits` digits, starting from state h0.

    `head` is the part of the salt prefix that did not fill a whole block (0-3 bytes), so
    len(head) + n_digits bytes remain to be hashed; `total_len` is the full key length.
    """
    n = ids.shape[0]
    width = len(head) + n_digits
    # byte columns of the remaining key: constant head bytes, then the digits (most significant first)
    columns: list[npt.NDArray[np.uint32] | int] = list(head)
    rest = ids.copy()
    digit_cols: list[npt.NDArray[np.uint32]] = []
    for _ in range(n_digits):
        digit_cols.append((rest % 10 + 48).astype(np.uint32))
        rest //= 10
    columns.extend(reversed(digit_cols))
    h = np.full(n, h0, dtype=np.uint32)
    n_blocks, tail = divmod(width, 4)
    for b in range(n_blocks + (1 if tail else 0)):
        word: npt.NDArray[np.uint32] = np.zeros(n, dtype=np.uint32)
        const = 0
        for j, col in enumerate(columns[4 * b : 4 * b + 4]):
            if isinstance(col, int):
                const |= col << (8 * j)
            elif j == 0:
                word = word | col
            else:
                word = word | (col << np.uint32(8 * j))
        if const:
            word = word | np.uint32(const)
        # the tail is mixed into h without the rotate-multiply-add step
        h = _mix_block_v(h, word) if b < n_blocks else h ^ _mix_k_v(word)
    h = h ^ np.uint32(total_len & _MASK)
    return _fmix_v(h)


def hashes(salt: str, contact_ids: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    """mmh3.hash(f"{salt}:{id}", seed=0, signed=False) for every id, vectorized."""
    ids = np.asarray(contact_ids, dtype=np.int64)
    out = np.empty(ids.shape[0], dtype=np.uint32)
    if ids.shape[0] == 0:
        return out
    prefix = f"{salt}:".encode()
    full = len(prefix) // 4 * 4
    h0 = 0
    for i in range(0, full, 4):
        h0 = _mix_block_scalar(h0, int.from_bytes(prefix[i : i + 4], "little"))
    head = prefix[full:]
    negative = ids < 0
    digits = _digit_count(np.where(negative, 0, ids))
    for n_digits in np.unique(digits[~negative]):
        index = np.flatnonzero((digits == n_digits) & ~negative)
        nd = int(n_digits)
        out[index] = _hash_group(h0, head, ids[index], nd, len(prefix) + nd)
    for position in np.flatnonzero(negative):
        out[position] = mmh3.hash(f"{salt}:{int(ids[position])}", seed=0, signed=False)
    return out


def buckets(salt: str, contact_ids: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`bucket(salt, id)` for every id, vectorized (int32 in [0, 10_000))."""
    return (hashes(salt, contact_ids) % np.uint32(BUCKETS)).astype(np.int32)
