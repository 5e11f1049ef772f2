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


def _rotl_inplace(x: npt.NDArray[np.uint32], r: int, scratch: npt.NDArray[np.uint32]) -> None:
    np.right_shift(x, np.uint32(32 - r), out=scratch)
    np.left_shift(x, np.uint32(r), out=x)
    np.bitwise_or(x, scratch, out=x)


def _mix_k_inplace(k: npt.NDArray[np.uint32], scratch: npt.NDArray[np.uint32]) -> None:
    np.multiply(k, _C1, out=k)
    _rotl_inplace(k, 15, scratch)
    np.multiply(k, _C2, out=k)


def _fmix_inplace(h: npt.NDArray[np.uint32], scratch: npt.NDArray[np.uint32]) -> None:
    for shift, factor in ((16, _F1), (13, _F2)):
        np.right_shift(h, np.uint32(shift), out=scratch)
        np.bitwise_xor(h, scratch, out=h)
        np.multiply(h, factor, out=h)
    np.right_shift(h, np.uint32(16), out=scratch)
    np.bitwise_xor(h, scratch, out=h)


def _four_digit_table() -> npt.NDArray[np.uint32]:
    """_DIGITS4[k]: the ASCII bytes of f"{k:04d}" as a little-endian uint32 (first character lowest)."""
    text = np.frombuffer("".join(f"{k:04d}" for k in range(10_000)).encode(), dtype=np.uint8)
    return text.reshape(10_000, 4).copy().view("<u4").reshape(10_000).astype(np.uint32)


_DIGITS4 = _four_digit_table()


def _digit_count(ids: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Number of decimal digits of each non-negative id (0 has one digit)."""
    powers = 10 ** np.arange(1, _MAX_DIGITS, dtype=np.int64)
    return np.searchsorted(powers, ids, side="right") + 1


def _pieces(
    head: bytes, ids: npt.NDArray[np.int64], n_digits: int
) -> list[tuple[npt.NDArray[np.uint32] | int, int]]:
    """The remaining key as (little-endian value, byte length) pieces of at most 4 bytes: the
    constant head, the leading 1-4 digits, then groups of 4 digits (from 4-digit lookups)."""
    pieces: list[tuple[npt.NDArray[np.uint32] | int, int]] = []
    if head:
        pieces.append((int.from_bytes(head, "little"), len(head)))
    groups: list[npt.NDArray[np.uint32]] = []
    rest = ids
    full, lead = divmod(n_digits, 4)
    if lead == 0:
        full, lead = full - 1, 4
    for _ in range(full):
        rest, group = np.divmod(rest, 10_000)
        groups.append(_DIGITS4[group])
    # the leading digits: the last `lead` characters of the zero-padded 4-digit text
    pieces.append((_DIGITS4[rest] >> np.uint32(8 * (4 - lead)), lead))
    pieces.extend((g, 4) for g in reversed(groups))
    return pieces


def _hash_group(
    h0: int, head: bytes, ids: npt.NDArray[np.int64], n_digits: int, total_len: int
) -> npt.NDArray[np.uint32]:
    """Hashes of `head + str(id)` for ids that all have `n_digits` digits, starting from state h0.

    `head` is the part of the salt prefix that did not fill a whole block (0-3 bytes), so
    len(head) + n_digits bytes remain to be hashed; `total_len` is the full key length.
    """
    n = ids.shape[0]
    h = np.full(n, h0, dtype=np.uint32)
    scratch = np.empty(n, dtype=np.uint32)
    word = np.zeros(n, dtype=np.uint32)
    const, filled = 0, 0  # constant bytes of the word being built, and how many bytes it holds

    def emit(last: bool) -> None:
        nonlocal const
        if const:
            np.bitwise_or(word, np.uint32(const), out=word)
        _mix_k_inplace(word, scratch)
        np.bitwise_xor(h, word, out=h)
        if not last:  # the tail is mixed in without the rotate-multiply-add step
            _rotl_inplace(h, 13, scratch)
            np.multiply(h, _M5, out=h)
            np.add(h, _N1, out=h)
        word.fill(0)
        const = 0

    for value, length in _pieces(head, ids, n_digits):
        shift = 8 * filled
        if isinstance(value, int):
            const |= (value << shift) & _MASK
        else:
            np.bitwise_or(word, value << np.uint32(shift) if shift else value, out=word)
        filled += length
        if filled >= 4:
            emit(last=False)
            filled -= 4
            if filled:  # the bytes that did not fit start the next word
                if isinstance(value, int):
                    const = value >> (8 * (length - filled))
                else:
                    np.right_shift(value, np.uint32(8 * (length - filled)), out=word)
    if filled:
        emit(last=True)
    np.bitwise_xor(h, np.uint32(total_len & _MASK), out=h)
    _fmix_inplace(h, scratch)
    return h


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
    any_negative = bool(negative.any())
    digits = _digit_count(np.where(negative, 0, ids) if any_negative else ids)
    if any_negative:
        digits[negative] = 0
    sizes = np.bincount(digits, minlength=_MAX_DIGITS + 1)
    for nd in np.flatnonzero(sizes[1:]) + 1:
        n_digits = int(nd)
        if sizes[n_digits] == ids.shape[0]:  # one length for every id: no gather and scatter
            return _hash_group(h0, head, ids, n_digits, len(prefix) + n_digits)
        index = np.flatnonzero(digits == n_digits)
        out[index] = _hash_group(h0, head, ids[index], n_digits, len(prefix) + n_digits)
    for position in np.flatnonzero(negative):
        out[position] = mmh3.hash(f"{salt}:{int(ids[position])}", seed=0, signed=False)
    return out


def buckets(salt: str, contact_ids: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`bucket(salt, id)` for every id, vectorized (int32 in [0, 10_000))."""
    return (hashes(salt, contact_ids) % np.uint32(BUCKETS)).astype(np.int32)
