"""Per-arm metrics of a rollout for people: counts and rates by stage and arm (and segment), read from
the `ArmMetric` aggregates only, so the report costs the same at ten events or ten million."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events.metrics import RENDER_BUCKETS, RENDER_EDGES_MS
from campaigns.stats import histogram_quantile
from models import ArmMetric

COUNTS = ("sent", "failed", "delivered", "open", "open_machine", "click", "click_bot", "conversion",
          "unsubscribe", "complaint", "bounce")  # fmt: skip
RATES = {
    "open_rate": "open",
    "click_rate": "click",
    "conversion_rate": "conversion",
    "unsubscribe_rate": "unsubscribe",
    "complaint_rate": "complaint",
    "bounce_rate": "bounce",
}


def _row(sums: dict[str, tuple[float, float, float]]) -> dict[str, Any]:
    def count(metric: str) -> float:
        return sums.get(metric, (0.0, 0.0, 0.0))[0]

    sent = count("sent")
    out: dict[str, Any] = {m: int(count(m)) for m in COUNTS}
    # as in campaign results: accepted by the SMTP server and not reported as bounced; the delivery
    # events an MTA or ESP reports (POST /events) are kept apart
    out["delivered_reported"] = out["delivered"]
    out["delivered"] = int(max(sent - count("bounce"), 0))
    revenue = sums.get("revenue", (0.0, 0.0, 0.0))
    out["revenue"] = revenue[1]
    out["revenue_per_recipient"] = revenue[1] / sent if sent else None
    for rate, metric in RATES.items():
        out[rate] = count(metric) / sent if sent else None
    attempts = sent + count("failed")
    out["send_error_rate"] = count("failed") / attempts if attempts else None
    render = sums.get("render_ms", (0.0, 0.0, 0.0))
    out["render_mean_ms"] = render[1] / render[0] if render[0] else None
    out["render_p95_ms"] = histogram_quantile(RENDER_EDGES_MS, [count(b) for b in RENDER_BUCKETS], 0.95)
    if out["render_p95_ms"] == float("inf"):
        out["render_p95_ms"] = RENDER_EDGES_MS[-2]  # "more than the last finite edge"
    return out


def rollout_metrics(session: Session, rollout_id: int, segment: str = "") -> dict[str, Any]:
    """{"stages": [{"stage_index", "arm", ...counts and rates}], "arms": [{"arm", ...}] (all stages)}."""
    rows = session.execute(
        sa.select(
            ArmMetric.stage_index,
            ArmMetric.arm,
            ArmMetric.metric,
            sa.func.sum(ArmMetric.count),
            sa.func.sum(ArmMetric.total),
            sa.func.sum(ArmMetric.total_sq),
        )
        .where(ArmMetric.rollout_id == rollout_id, ArmMetric.segment == segment)
        .group_by(ArmMetric.stage_index, ArmMetric.arm, ArmMetric.metric)
    ).all()
    by_stage: dict[tuple[int, str], dict[str, tuple[float, float, float]]] = defaultdict(dict)
    by_arm: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    for stage, arm, metric, count, total, total_sq in rows:
        triple = (float(count or 0), float(total or 0), float(total_sq or 0))
        by_stage[(int(stage), str(arm))][str(metric)] = triple
        acc = by_arm[str(arm)][str(metric)]
        for i in range(3):
            acc[i] += triple[i]
    return {
        "rollout_id": rollout_id,
        "segment": segment,
        "stages": [{"stage_index": s, "arm": a, **_row(m)} for (s, a), m in sorted(by_stage.items())],
        "arms": [
            {"arm": a, **_row({k: (v[0], v[1], v[2]) for k, v in m.items()})}
            for a, m in sorted(by_arm.items())
        ],
    }


def segments_of(session: Session, rollout_id: int) -> list[str]:
    return [
        str(s)
        for s in session.scalars(
            sa.select(ArmMetric.segment)
            .where(ArmMetric.rollout_id == rollout_id, ArmMetric.segment != "")
            .distinct()
        )
    ]
