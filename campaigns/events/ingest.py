"""Ingest: read raw tracking events from the Redis stream in batches, classify machine opens and bot
clicks, dedupe, store, update per-arm aggregates, then acknowledge.

Events are acknowledged only after the database commit, and entries left pending by a dead worker are
claimed again (at once when the dead consumer ran on this host, after `claim_idle_ms` otherwise), so
an accepted event is never dropped; the unique dedupe key makes storing the same entry twice a no-op.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import ResponseError
from sqlalchemy.orm import Session

from campaigns.events import metrics
from campaigns.events.classify import classify_click, classify_open
from campaigns.events.tracking import GROUP, STREAM, RawEvent
from campaigns.privacy import consent
from campaigns.runtime import Runtime
from campaigns.sending import bounces
from campaigns.sending.liveness import HOST, pid_alive
from models import Contact, Event, Send, utcnow

log = logging.getLogger(__name__)
# event kind -> the bounce log's kind (campaigns.sending.bounces acts on it)
BOUNCE_KINDS = {"bounce": bounces.HARD, "soft_bounce": bounces.SOFT, "complaint": bounces.COMPLAINT}


@dataclass
class IngestReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    orphans: int = 0  # events for sends that no longer exist


def ensure_group(redis: Redis) -> None:
    try:
        redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def ingest(
    rt: Runtime, consumer: str | None = None, count: int = 1000, claim_idle_ms: int = 60_000
) -> IngestReport:
    """Drain the stream: everything pending at the call is stored before this returns."""
    redis = rt.redis
    name = consumer or f"ingest|{HOST}|{os.getpid()}"
    ensure_group(redis)
    _claim_from_dead_consumers(redis, name)
    report = IngestReport()
    claim_from: str | bytes | None = "0-0"
    own_pending = True
    while True:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        if own_pending:  # what this consumer holds: claimed from dead ones, or left by a failed run
            response = redis.xreadgroup(GROUP, name, {STREAM: "0"}, count=count)
            held = response[0][1] if response else []
            gone = [entry_id for entry_id, fields in held if not fields]  # deleted after a store
            if gone:
                redis.xack(STREAM, GROUP, *gone)
            entries = [e for e in held if e[1]]
            own_pending = bool(held)
        if not entries and claim_from is not None:
            claimed = redis.xautoclaim(
                STREAM, GROUP, name, min_idle_time=claim_idle_ms, start_id=claim_from, count=count
            )
            next_id, entries = claimed[0], [e for e in claimed[1] if e[1]]
            claim_from = None if next_id in (b"0-0", "0-0") else next_id
        if not entries:
            response = redis.xreadgroup(GROUP, name, {STREAM: ">"}, count=count)
            entries = response[0][1] if response else []
        if not entries and claim_from is None:
            return report
        if not entries:
            continue
        events = [RawEvent.from_fields(fields) for _, fields in entries]
        policy = bounces.SoftBouncePolicy(rt.settings.soft_bounce_limit, rt.settings.soft_bounce_days)
        with rt.session() as session:
            _store(session, events, report, policy)
        ids = [entry_id for entry_id, _ in entries]
        redis.xack(STREAM, GROUP, *ids)
        redis.xdel(STREAM, *ids)
        report.read += len(entries)


def _consumer_is_dead(name: str) -> bool:
    parts = name.split("|")
    if len(parts) != 3 or parts[1] != HOST:
        return False  # elsewhere: its entries are claimed once idle for `claim_idle_ms`
    try:
        return not pid_alive(int(parts[2]))
    except ValueError:
        return False


def _claim_from_dead_consumers(redis: Redis, name: str) -> None:
    """Entries a killed ingest process of this host had read but not stored: take them over now."""
    for consumer in redis.xinfo_consumers(STREAM, GROUP):
        other = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
        if other == name or not _consumer_is_dead(other):
            continue
        while True:
            pending = redis.xpending_range(STREAM, GROUP, "-", "+", 1000, consumername=other)
            if not pending:
                break
            redis.xclaim(STREAM, GROUP, name, 0, [p["message_id"] for p in pending], justid=True)
        redis.xgroup_delconsumer(STREAM, GROUP, other)


def _store(
    session: Session,
    events: list[RawEvent],
    report: IngestReport,
    policy: bounces.SoftBouncePolicy = bounces.SoftBouncePolicy(),
) -> None:
    keys = [e.key for e in events]
    seen = set(session.scalars(sa.select(Event.dedupe_key).where(Event.dedupe_key.in_(keys))))
    fresh: dict[str, RawEvent] = {}
    for e in events:
        if e.key in seen or e.key in fresh:
            report.duplicates += 1
        else:
            fresh[e.key] = e
    sends = {
        s.id: s
        for s in session.scalars(sa.select(Send).where(Send.id.in_({e.send_id for e in fresh.values()})))
    }
    rows: list[Event] = []
    for e in fresh.values():
        send = sends.get(e.send_id)
        if send is None:
            report.orphans += 1
            continue
        occurred = datetime.fromtimestamp(e.at, UTC)
        since = (occurred - send.sent_at).total_seconds() if send.sent_at else None
        machine, reason = False, ""
        if e.kind == "open":
            machine, reason = classify_open(e.user_agent, e.ip, since)
        elif e.kind == "click":
            machine, reason = classify_click(e.user_agent, e.method, since)
        rows.append(
            Event(
                dedupe_key=e.key,
                kind=e.kind,
                send_id=send.id,
                campaign_id=send.campaign_id,
                contact_id=send.contact_id,
                rollout_id=send.rollout_id,
                arm=send.arm,
                stage_index=send.stage_index,
                link_id=e.link_id,
                item_id=e.item_id,
                value=e.value,
                machine=machine,
                reason=reason,
                user_agent=e.user_agent[:500],
                ip=e.ip[:64],
                occurred_at=occurred,
                stored_at=utcnow(),
            )
        )
    session.add_all(rows)
    session.flush()
    _contact_states(session, rows, {e.key: e for e in fresh.values()}, policy)
    consent.record_events(session, rows)  # unsubscribes, complaints, bounces in the consent history
    labelled = {s.id: s.segments for s in sends.values() if s.segments}
    metrics.record_events(session, rows, segments=labelled)
    _purchases_to_flows(session, rows)
    report.stored += len(rows)


def _purchases_to_flows(session: Session, rows: list[Event]) -> None:
    """A conversion is a purchase to the flows: it starts `purchase` flows and ends journeys that
    exit on one (campaigns.flows.entering.record_purchases, set-based over the batch)."""
    bought = [
        (e.contact_id, f"conversion:{e.dedupe_key}", {"value": e.value, "send_id": e.send_id}, e.occurred_at)
        for e in rows
        if e.kind == "conversion" and e.contact_id is not None
    ]
    if bought:
        from campaigns.flows.entering import record_purchases

        record_purchases(session, bought, utcnow())


def _contact_states(
    session: Session, rows: list[Event], raw: dict[str, RawEvent], policy: bounces.SoftBouncePolicy
) -> None:
    """Unsubscribes, complaints and bounces stop future sends to the contact (soft bounces once
    `policy` says so). Bounces the send path refused synchronously (source `smtp`) were acted on
    there already; here they only feed the per-arm metrics."""
    now = utcnow()
    emails = dict(
        session.execute(
            sa.select(Contact.id, Contact.email).where(
                Contact.id.in_({e.contact_id for e in rows if e.contact_id is not None})
            )
        ).all()
    )
    for event in rows:
        if event.contact_id is None:
            continue
        if event.kind == "unsubscribe":
            session.execute(
                sa.update(Contact)
                .where(Contact.id == event.contact_id, Contact.status == "active")
                .values(status="unsubscribed", updated_at=now, unsubscribed_at=now)
            )
            continue
        kind = BOUNCE_KINDS.get(event.kind)
        source = raw[event.dedupe_key].source if event.dedupe_key in raw else ""
        if kind is None or source == "smtp":
            continue
        report = bounces.BounceReport(
            kind=kind,
            source=source or "api",
            detail=raw[event.dedupe_key].detail if event.dedupe_key in raw else "",
            send_id=event.send_id,
            email=emails.get(event.contact_id, ""),
        )
        bounces.apply(session, report, policy)
