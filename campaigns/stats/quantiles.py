"""Quantiles from a fixed histogram (render latency p95 without keeping every latency)."""

from __future__ import annotations

from collections.abc import Sequence


def histogram_quantile(edges: Sequence[float], counts: Sequence[float], q: float) -> float | None:
    """The upper edge of the bucket holding the q-quantile: a conservative (never low) estimate.

    `counts[i]` counts values in (edges[i-1], edges[i]]. None when the histogram is empty.
    """
    if len(edges) != len(counts):
        raise ValueError("one count per bucket edge")
    if not 0 < q <= 1:
        raise ValueError("q must be in (0, 1]")
    total = float(sum(counts))
    if total <= 0:
        return None
    need = q * total
    running = 0.0
    for edge, count in zip(edges, counts, strict=True):
        running += float(count)
        if running >= need - 1e-9:
            return float(edge)
    return float(edges[-1])
