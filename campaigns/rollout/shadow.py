"""Shadow and dark-launch reports: what the AI path would have sent, against what was sent.

In a shadow or dark stage the send path renders control content for everyone and, for the would-be
treatment contacts (`Assignment.shadow`), also computes the AI content and stores a
`models.ShadowRender` (items, content hash, latency, error; a dark launch keeps only latency and
errors). This report compares the two paths per stage: how often the AI path failed, how slow it
was next to the control render of the same sends, and how much it would have changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Send, ShadowRender

MAX_ROWS = 200_000  # latency percentiles are computed from at most this many most recent renders


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "max": round(float(array.max()), 2),
    }


def shadow_report(session: Session, rollout_id: int) -> list[dict[str, Any]]:
    """One entry per stage that has shadow renders, oldest stage first."""
    rows = session.execute(
        sa.select(
            Send.stage_index,
            ShadowRender.latency_ms,
            ShadowRender.error,
            ShadowRender.item_ids,
            ShadowRender.content_sha256,
            Send.render_ms,
            Send.state,
        )
        .join(Send, Send.id == ShadowRender.send_id)
        .where(ShadowRender.rollout_id == rollout_id)
        .order_by(ShadowRender.id.desc())
        .limit(MAX_ROWS)
    ).all()
    stages: dict[int, dict[str, Any]] = {}
    for row in rows:
        stage = stages.setdefault(
            -1 if row.stage_index is None else int(row.stage_index),
            {
                "ai_ms": [],
                "control_ms": [],
                "errors": 0,
                "with_items": 0,
                "items": set(),
                "hashes": set(),
                "n": 0,
                "sent": 0,
            },
        )
        stage["n"] += 1
        stage["sent"] += row.state == "sent"
        if row.error:
            stage["errors"] += 1
        else:
            stage["ai_ms"].append(float(row.latency_ms))
        if row.render_ms is not None:
            stage["control_ms"].append(float(row.render_ms))
        items = list(row.item_ids or [])
        if items:
            stage["with_items"] += 1
            stage["items"].update(str(i) for i in items)
        if row.content_sha256:
            stage["hashes"].add(row.content_sha256)
    report = []
    for index in sorted(stages):
        s = stages[index]
        report.append(
            {
                "stage_index": None if index < 0 else index,
                "renders": s["n"],
                "control_sent": s["sent"],
                "errors": s["errors"],
                "error_rate": round(s["errors"] / s["n"], 4) if s["n"] else None,
                "ai_latency_ms": _percentiles(s["ai_ms"]),
                "control_render_ms": _percentiles(s["control_ms"]),
                "with_recommendations": s["with_items"],
                "distinct_items": len(s["items"]),
                "distinct_contents": len(s["hashes"]),
            }
        )
    return report
