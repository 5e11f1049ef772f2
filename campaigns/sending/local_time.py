"""Delivery at the recipient's local time: a planned wave is re-cut into batches by the instant each
contact's chosen local hour next comes round in their time zone (a default zone for contacts with
none or an unknown one). Only the batches and their start times change; the ledger rows, and so
every contact's arm (a pure function of the rollout's salt and the contact id), stay as planned.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError
from models import Contact, Send


def zone(name: str, default: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else default
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        return default


def check(local_hour: int, default_timezone: str) -> ZoneInfo:
    if not 0 <= local_hour <= 23:
        raise InputError("must be an hour from 0 to 23", where="local_hour")
    try:
        return ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise InputError(f"unknown time zone {default_timezone!r}", where="default_timezone") from exc


def next_local_hour(now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The start of the next `hour`:00 in `tz` (now, when that hour is running), in UTC."""
    local = now.astimezone(tz)
    if local.hour == hour:
        return now
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if start <= local:
        start = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def spread(
    session: Session, wave_id: int, batch_size: int, local_hour: int, default_timezone: str, now: datetime
) -> dict[int, datetime]:
    """Re-batch the wave's rows by local send instant; returns batch -> not-before instant."""
    default = check(local_hour, default_timezone)
    zones = dict(
        session.execute(
            sa.select(Contact.timezone, sa.func.count())
            .join(Send, Send.contact_id == Contact.id)
            .where(Send.wave_id == wave_id)
            .group_by(Contact.timezone)
        ).all()
    )
    at_of = {name: next_local_hour(now, zone(name, default), local_hour) for name in zones}
    by_instant: dict[datetime, list[str]] = defaultdict(list)
    for name, at in at_of.items():
        by_instant[at].append(name)
    schedule: dict[int, datetime] = {}
    batch = 0
    for at in sorted(by_instant):
        ids = list(
            session.scalars(
                sa.select(Send.id)
                .join(Contact, Contact.id == Send.contact_id)
                .where(Send.wave_id == wave_id, Contact.timezone.in_(by_instant[at]))
                .order_by(Send.id)
            )
        )
        rows = []
        for start in range(0, len(ids), batch_size):
            schedule[batch] = at
            rows += [{"id": i, "batch": batch, "not_before": at} for i in ids[start : start + batch_size]]
            batch += 1
        if rows:
            session.execute(sa.update(Send), rows)
    return schedule
