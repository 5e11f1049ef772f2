"""Time-driven triggers, evaluated by a periodic job (`time_triggers_job`, campaigns.ops.periodic):

- `segment_joined`: contacts found in the segment who were not in it at the last check enter. Who was
  in it is kept per flow (`flow_segment_members`): a contact no longer found is marked gone (one
  statement), and joining again is join n + 1, key `segment:<id>` for the first join and
  `segment:<id>:<n>` after, so the re-entry rule decides about a re-join.
- `inactivity`: contacts sent at least one email whose last human open or click (or, with none, their
  first email) is more than N days ago; the key names that last activity's day, so a contact who
  becomes active and then inactive again is a new event for the re-entry rule.
- `date_attribute`: a date (`YYYY-MM-DD...`) in the attribute, shifted by `offset_days` (each year's
  anniversary when `yearly`), that falls today or yesterday (UTC; a missed run catches up a day).

The contacts of a run enter set-based (`campaigns.flows.entering.enter_many`: one read and one insert
per 1,000), so the key makes it idempotent. At most `LIMIT` contacts per flow per run; the next run
takes the rest.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.rules import segment_filter, segment_rules, sendable
from campaigns.flows.definition import DateAttribute, FlowDefinition, Inactivity, SegmentJoined
from campaigns.flows.entering import enter_many
from campaigns.runtime import Runtime
from models import Contact, Flow, FlowSegmentMember, Send, utcnow

LIMIT = 5000


def run_time_triggers(rt: Runtime, now: datetime | None = None) -> int:
    now = now or utcnow()
    entered = 0
    with rt.session() as session:
        flow_ids = list(
            session.scalars(
                sa.select(Flow.id).where(
                    Flow.state == "active",
                    Flow.trigger_kind.in_(("segment_joined", "inactivity", "date_attribute")),
                )
            )
        )
    for flow_id in flow_ids:  # one transaction per flow: a broken one fails alone
        with rt.session() as session:
            flow = session.get(Flow, flow_id)
            if flow is not None and flow.state == "active":
                entered += evaluate_flow(session, flow, now)
    return entered


def time_triggers_job() -> int:
    from campaigns import runtime

    return run_time_triggers(runtime.current())


def evaluate_flow(session: Session, flow: Flow, now: datetime) -> int:
    trigger = FlowDefinition.model_validate(flow.definition).trigger
    if isinstance(trigger, SegmentJoined):
        candidates = _segment(session, flow, trigger, now)
    elif isinstance(trigger, Inactivity):
        candidates = _inactive(session, flow, trigger, now)
    elif isinstance(trigger, DateAttribute):
        candidates = _dated(session, trigger, now)
    else:
        return 0
    return enter_many(session, flow, [(contact_id, key, {}) for contact_id, key in candidates], now)


def _segment(session: Session, flow: Flow, trigger: SegmentJoined, now: datetime) -> list[tuple[int, str]]:
    """Mark who left the segment, then take up to `LIMIT` who joined (again): their join count goes
    up and names their trigger key."""
    rules = segment_rules(session, trigger.segment_id)
    inside = segment_filter(rules, now)
    member = FlowSegmentMember
    still_in = sa.select(Contact.id).where(Contact.id == member.contact_id, sendable(), inside).exists()
    session.execute(
        sa.update(member)
        .where(member.flow_id == flow.id, member.present.is_(True), ~still_in)
        .values(present=False, changed_at=now)
        .execution_options(synchronize_session=False)
    )
    known = sa.select(member.contact_id).where(
        member.flow_id == flow.id, member.contact_id == Contact.id, member.present.is_(True)
    )
    joined = list(
        session.scalars(
            sa.select(Contact.id).where(sendable(), inside, ~known.exists()).order_by(Contact.id).limit(LIMIT)
        )
    )
    if not joined:
        return []
    joins = dict(
        session.execute(
            sa.select(member.contact_id, member.joins).where(
                member.flow_id == flow.id, member.contact_id.in_(joined)
            )
        ).all()
    )
    session.execute(
        sa.update(member)
        .where(member.flow_id == flow.id, member.contact_id.in_(list(joins)))
        .values(present=True, joins=member.joins + 1, changed_at=now)
        .execution_options(synchronize_session=False)
    )
    new = [c for c in joined if c not in joins]
    if new:
        session.execute(
            sa.insert(member),
            [
                {"flow_id": flow.id, "contact_id": c, "present": True, "joins": 1, "changed_at": now}
                for c in new
            ],
        )
    key = f"segment:{trigger.segment_id}"
    return [(c, key if c not in joins else f"{key}:{joins[c] + 1}") for c in joined]


def _inactive(session: Session, flow: Flow, trigger: Inactivity, now: datetime) -> list[tuple[int, str]]:
    cutoff = now - timedelta(days=trigger.days)
    rows = session.execute(
        sa.select(
            Send.contact_id,
            sa.func.max(Send.opened_at),
            sa.func.max(Send.clicked_at),
            sa.func.min(Send.sent_at),
        )
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.sent_at.is_not(None), sendable())
        .group_by(Send.contact_id)
    ).all()
    out = []
    for contact_id, opened, clicked, first_sent in rows:
        last = max((t for t in (opened, clicked) if t is not None), default=first_sent)
        if last is not None and last <= cutoff:
            out.append((contact_id, f"inactive:{last.date().isoformat()}"))
        if len(out) >= LIMIT:
            break
    return out


def _parse_date(raw: object) -> date | None:
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _target(day: date, trigger: DateAttribute, today: date) -> date | None:
    if not trigger.yearly:
        return day + timedelta(days=trigger.offset_days)
    for year in (today.year - 1, today.year, today.year + 1):  # the anniversary nearest today
        try:
            anniversary = day.replace(year=year)
        except ValueError:  # 29 February in a common year: the 28th
            anniversary = day.replace(year=year, day=28)
        target = anniversary + timedelta(days=trigger.offset_days)
        if today - timedelta(days=1) <= target <= today:
            return target
    return None


def _dated(session: Session, trigger: DateAttribute, now: datetime) -> list[tuple[int, str]]:
    today = now.date()
    value = Contact.attributes[trigger.attribute].as_string()
    rows = session.execute(sa.select(Contact.id, value).where(sendable(), value.is_not(None))).all()
    out = []
    for contact_id, raw in rows:
        day = _parse_date(raw)
        target = _target(day, trigger, today) if day is not None else None
        if target is not None and today - timedelta(days=1) <= target <= today:
            out.append((contact_id, f"date:{trigger.attribute}:{target.isoformat()}"))
        if len(out) >= LIMIT:
            break
    return out
