"""Duplicate detection for streamed imports: which keys a file already had, in a few bytes each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SeenKeys:
    """Which keys (emails, SKUs) a file already had, and on which row: 12 bytes per key.

    Keys are 64-bit hashes (Python's string hash: SipHash, keyed per process, which is all a file's
    import needs); recent ones sit in a dict, older ones in sorted numpy arrays. A false "duplicate"
    needs a 64-bit collision: about 3e-8 for a 1,000,000-row file.
    """

    def __init__(self, merge_every: int = 100_000) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.int64)
        self._recent: dict[int, int] = {}
        self._merge_every = merge_every

    def first_row(self, key: str, row: int) -> int | None:
        """The row where `key` was first seen, or None (and remember it as seen on `row`)."""
        digest = hash(key)
        earlier = self._recent.get(digest)
        if earlier is not None:
            return earlier
        if self._keys.size:
            i = int(np.searchsorted(self._keys, digest))
            if i < self._keys.size and int(self._keys[i]) == digest:
                return int(self._rows[i])
        self._recent[digest] = row
        if len(self._recent) >= self._merge_every:
            self._merge()
        return None

    def first_rows(self, keys: Sequence[str], rows: Sequence[int]) -> list[int | None]:
        """`first_row` of each key in turn (the older keys are searched once for the lot)."""
        digests = [hash(key) for key in keys]
        older: list[int] = [-1] * len(digests)  # row in the older keys, -1: not there
        if self._keys.size and digests:
            wanted = np.array(digests, dtype=np.int64)
            at = np.minimum(np.searchsorted(self._keys, wanted), self._keys.size - 1)
            older = np.where(self._keys[at] == wanted, self._rows[at], -1).tolist()
        recent = self._recent
        found: list[int | None] = []
        for digest, row, old in zip(digests, rows, older, strict=True):
            earlier = old if old >= 0 else recent.get(digest)
            if earlier is None:
                recent[digest] = row
            found.append(earlier)
        if len(recent) >= self._merge_every:
            self._merge()
        return found

    def _merge(self) -> None:
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), dtype=np.int64)])
        rows = np.concatenate([self._rows, np.fromiter(self._recent.values(), dtype=np.int64)])
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows = keys[order], rows[order]
        self._recent.clear()
