"""When sending resumed after the last tracking event, for the stale-data check (`decide._stale`).

A weekly list is quiet for days between sends: its events stop a few days after a send, and the next
send starts before any of its own events can have arrived. Data is stale only when recipients sent
after the last event have had ``stale_after_hours`` to bring one and none came, so the quiet is
counted from the first send after the last event, not from the last event itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import ArmMetric

# the aggregates whose times say when recipients were last sent, and when tracking last brought an event
SEND_METRICS = ("sent", "failed")
EVENT_METRICS = ("delivered", "open", "open_machine", "click", "click_bot", "conversion", "unsubscribe",
                 "complaint", "bounce")  # fmt: skip


def resumed_send_at(session: Session, rollout_id: int, last_event: datetime) -> datetime | None:
    """The first send after `last_event` (None: nothing sent since). Read from the send-time
    aggregates written or updated since then; a row created before it was being sent to at that
    moment, so sending had not stopped."""
    first = session.scalar(
        sa.select(sa.func.min(ArmMetric.created_at)).where(
            ArmMetric.rollout_id == rollout_id,
            ArmMetric.segment == "",
            ArmMetric.metric.in_(SEND_METRICS),
            ArmMetric.updated_at > last_event,
        )
    )
    if first is None:
        return None
    if isinstance(first, str):  # aggregated datetimes come back raw from SQLite
        first = datetime.fromisoformat(first)
    created = first.replace(tzinfo=UTC) if first.tzinfo is None else first.astimezone(UTC)
    return max(created, last_event)
