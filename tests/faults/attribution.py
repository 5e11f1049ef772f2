"""Which fault caused which duplicate. A message is sent twice when the fault that hit its sender
came after the SMTP server accepted the first copy and before that acceptance was journaled; the
second copy is then sent by the re-run, after the fault. So each copy after the first is charged to
the fault nearest in time to the copy before it, among the faults that came before the copy itself
(the chaos thread spaces its faults about a second apart; a copy in flight at a fault reaches the
sink within milliseconds of it)."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class Fault:
    at: float  # time.monotonic() just before the fault was caused
    kind: str  # "kill", "redis_restart", "database_cut"


def charge(faults: Sequence[Fault], copies: Iterable[Sequence[float]]) -> tuple[Counter[int], int]:
    """Duplicates per fault (by index in `faults`, which is in time order) and those with no fault
    before them (a duplicate no fault explains). `copies` holds, per recipient, the sink's arrival
    times of its copies."""
    times = [fault.at for fault in faults]
    charged: Counter[int] = Counter()
    unexplained = 0
    for arrivals in copies:
        ordered = sorted(arrivals)
        for previous, copy in pairwise(ordered):
            before = bisect_right(times, copy)  # faults [0, before) came before this copy
            if before == 0:
                unexplained += 1
                continue
            nearest = min(range(before), key=lambda i: abs(times[i] - previous))
            charged[nearest] += 1
    return charged, unexplained


def per_fault(faults: Sequence[Fault], charged: Counter[int], kind: str) -> list[int]:
    """The duplicates of each fault of `kind`, in order (0 for a fault that caused none)."""
    return [charged[i] for i, fault in enumerate(faults) if fault.kind == kind]
