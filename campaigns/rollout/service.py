"""What the send path asks the database about a rollout: its spec, the segments it needs, the kill switch.

These read the `rollouts` row directly (never Redis, never a cache) so the kill switch works while
Redis, the workers or the statistics are down: the send path calls `is_killed` at batch start and
every `Settings.kill_check_every` messages, and a kill is visible to it as soon as `kill` commits.
`is_killed` and `load_spec` read on their own short-lived connection, outside the caller's
transaction, so a batch holding an older snapshot (REPEATABLE READ, a long transaction) still sees
the latest commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import NotFound
from campaigns.rollout.assignment import ContactFrame, RolloutSpec, closed_spec, spec_from_row
from models import Contact, Rollout

log = logging.getLogger("mailramp.rollout")


def get_rollout(session: Session, rollout_id: int, *, for_update: bool = False) -> Rollout:
    query = sa.select(Rollout).where(Rollout.id == rollout_id)
    if for_update:
        query = query.with_for_update()
    rollout = session.scalars(query.execution_options(populate_existing=True)).first()
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    return rollout


def _read_committed(session: Session, statement: sa.Select[Any]) -> sa.Row[Any] | None:
    """One row as last committed: on a fresh pooled connection when the session is bound to an engine."""
    bind = session.get_bind()
    if isinstance(bind, sa.Engine):
        with bind.connect() as connection:
            return connection.execute(statement).first()
    return session.execute(statement).first()


def load_spec(session: Session, rollout_id: int) -> RolloutSpec:
    """The rollout's current spec, as last committed. A missing or invalid row fails closed
    (everyone control, the error logged and kept in `RolloutSpec.failed`)."""
    salt = ""
    try:
        row = _read_committed(session, sa.select(Rollout.__table__).where(Rollout.id == rollout_id))
        if row is None:
            raise NotFound(f"rollout {rollout_id} does not exist")
        salt = str(row.salt)
        return spec_from_row(row)
    except Exception as exc:
        log.exception("rollout %s: cannot build its spec; failing closed", rollout_id)
        return closed_spec(rollout_id, salt, f"{type(exc).__name__}: {exc}")


def required_segment_ids(spec: RolloutSpec) -> set[int]:
    """Segments whose membership masks `assign` needs in `ContactFrame.segments`."""
    return spec.targeting.segment_ids()


def required_attribute_names(spec: RolloutSpec) -> set[str]:
    """Attribute columns `assign` needs in `ContactFrame.attributes` ("country" may come from the column)."""
    return spec.targeting.attribute_names()


def segment_masks(session: Session, spec: RolloutSpec, contact_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Membership of each segment the spec needs, one SQL query per segment (campaigns.audience.rules)."""
    from campaigns.audience.rules import members

    ids = np.asarray(contact_ids, dtype=np.int64)
    return {
        segment_id: np.isin(ids, np.fromiter(members(session, segment_id, ids.tolist()), dtype=np.int64))
        for segment_id in sorted(required_segment_ids(spec))
    }


def contact_frame(session: Session, spec: RolloutSpec, contact_ids: Sequence[int]) -> ContactFrame:
    """The ContactFrame the send path would build for these contacts, read from the database.
    Unknown ids get no attributes (and so match only `missing` rules)."""
    ids = [int(i) for i in contact_ids]
    rows = {
        row.id: row
        for row in session.execute(
            sa.select(Contact.id, Contact.attributes, Contact.country).where(Contact.id.in_(ids))
        )
    }
    return ContactFrame.from_records(
        ids,
        [dict(rows[i].attributes or {}) if i in rows else {} for i in ids],
        [rows[i].country if i in rows else None for i in ids],
        segment_masks(session, spec, ids),
        names=required_attribute_names(spec),
    )


def is_killed(session: Session, rollout_id: int) -> bool:
    """True when the rollout must send control content to everyone from now on: killed, rolled back,
    or missing. One primary-key read outside the session's transaction and identity map."""
    row = session.execute(sa.select(Rollout.killed, Rollout.state).where(Rollout.id == rollout_id)).first()
    if row is None:
        return True
    return bool(row.killed) or row.state == "rolled_back"


def kill(session: Session, rollout_id: int, actor: str, reason: str) -> None:
    """The kill switch: control content for every contact not yet sent. Commits at once, so running
    batches see it at their next check. Audited through the state machine."""
    from campaigns.rollout.machine import transition

    rollout = get_rollout(session, rollout_id, for_update=True)
    transition(session, rollout, "kill", actor, reason)
    session.commit()
