"""Arms for one chunk of a batch: the send path's single call into the rollout engine.

The rollout row is read fresh from the database on every call, so a kill switch or a stage change
reaches batches that are already running at their next chunk. Any error fails closed: control.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.rules import members
from campaigns.rollout.assignment import ContactFrame, assign, required_attributes, spec_from_row
from campaigns.rollout.service import required_segment_ids
from models import Rollout, Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchAssignment:
    arms: np.ndarray
    buckets: npt.NDArray[np.int32]
    shadow: npt.NDArray[np.bool_]
    forced: npt.NDArray[np.bool_]
    stage_index: int | None
    model_version_id: int | None
    segments: list[list[str]] = field(default_factory=list)  # per contact: report-segment labels


def _control(n: int, stage_index: int | None = None) -> BatchAssignment:
    return BatchAssignment(
        arms=np.full(n, "control", dtype=object),
        buckets=np.full(n, -1, dtype=np.int32),
        shadow=np.zeros(n, dtype=bool),
        forced=np.zeros(n, dtype=bool),
        stage_index=stage_index,
        model_version_id=None,
    )


def assign_batch(
    session: Session,
    rollout_id: int | None,
    contact_ids: npt.NDArray[np.int64],
    attributes: Sequence[dict[str, Any]],
    countries: Sequence[str],
) -> BatchAssignment:
    n = len(contact_ids)
    if rollout_id is None:
        return _control(n)
    try:
        rollout = session.execute(
            sa.select(Rollout).where(Rollout.id == rollout_id).execution_options(populate_existing=True)
        ).scalar_one()
        spec = spec_from_row(rollout)
        ids = contact_ids.tolist()
        segments = {
            sid: np.isin(contact_ids, np.fromiter(members(session, sid, ids), dtype=np.int64))
            for sid in required_segment_ids(spec)
        }
        frame = ContactFrame.from_records(
            contact_ids, attributes, countries, segments, names=required_attributes(spec)
        )
        result = assign(spec, frame)
    except Exception:  # fail closed
        log.exception("arm assignment failed for rollout %s; this chunk gets control content", rollout_id)
        return _control(n)
    return BatchAssignment(
        arms=result.arms,
        buckets=result.buckets,
        shadow=result.shadow,
        forced=result.forced,
        stage_index=rollout.stage_index,
        model_version_id=rollout.model_version_id,
        segments=_report_labels(session, rollout, contact_ids),
    )


def _report_labels(session: Session, rollout: Rollout, contact_ids: npt.NDArray[np.int64]) -> list[list[str]]:
    """Which of the rollout's report segments each contact is in now (one query per segment)."""
    labels: list[list[str]] = [[] for _ in range(len(contact_ids))]
    if not rollout.report_segments:
        return labels
    ids = contact_ids.tolist()
    names = dict(
        session.execute(
            sa.select(Segment.id, Segment.name).where(Segment.id.in_(rollout.report_segments))
        ).all()
    )
    for segment_id, name in names.items():
        inside = members(session, segment_id, ids)
        for position, contact_id in enumerate(ids):
            if contact_id in inside:
                labels[position].append(name)
    return labels
