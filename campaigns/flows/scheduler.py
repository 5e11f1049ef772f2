"""The flow scheduler: a periodic job (`flow_tick_job`, campaigns.ops.periodic) that finds due entries
(`next_due_at <= now`, flow active) in bounded batches, advances each through its steps
(campaigns.flows.engine decides, this module applies) and hands send steps to the campaign send path.

Advancing: a claimed batch moves set-based (campaigns.flows.bulk: one query per fact per step, one
multi-row ledger insert per step campaign, one executemany UPDATE of the entries); if that fails the
batch is advanced entry by entry (`advance`), each in its own savepoint.

Claiming: on PostgreSQL the due rows are locked `FOR UPDATE SKIP LOCKED`, so several workers tick at
once without sharing a row; on SQLite a Redis lock serialises ticks. Each entry is advanced in its own
savepoint: a bad record (an unknown template, a broken definition) fails alone, is retried with
backoff, and after `MAX_ATTEMPTS` its journey ends `exited` with the error.

A send step writes one `queued` ledger row in the step's hidden campaign (campaigns.flows.sends) in the
same transaction that moves the entry on; the batch job is enqueued after the commit, and a lost
enqueue is recovered by `resume_open_waves` like any wave's. So a step is sent at most once per
entry: the entry never goes back, and the ledger never re-sends a `sent` row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from campaigns.flows import conditions
from campaigns.flows.bulk import advance_batch
from campaigns.flows.definition import BranchStep, FlowDefinition
from campaigns.flows.engine import MAX_HOPS, Complete, Exit, Goto, Send, Wait, decide
from campaigns.flows.sends import WaveBook, write_send
from campaigns.flows.triggers import definition_of, finish
from campaigns.runtime import Runtime
from campaigns.sending.planner import PlannedBatch
from models import Contact, Flow, FlowEntry, utcnow

log = logging.getLogger(__name__)
BATCH = 500  # entries claimed per transaction
MAX_BATCHES = 20  # per tick: a tick ends; the next picks up the rest
MAX_ATTEMPTS = 5
RETRY_MINUTES = (1, 5, 15, 60)
Clock = Callable[[], datetime]


@dataclass
class TickOutcome:
    advanced: int = 0
    sent: int = 0  # ledger rows written (queued)
    completed: int = 0
    exited: int = 0
    failed: int = 0
    deferred: int = 0  # send steps held for the contact's quiet hours (campaigns.flows.caps)
    capped: int = 0  # send steps skipped by a frequency cap
    batches: list[PlannedBatch] = field(default_factory=list)


def claim(session: Session, now: datetime, limit: int) -> list[FlowEntry]:
    query = (
        sa.select(FlowEntry)
        .join(Flow, Flow.id == FlowEntry.flow_id)
        .where(FlowEntry.state == "active", FlowEntry.next_due_at <= now, Flow.state == "active")
        .order_by(FlowEntry.next_due_at, FlowEntry.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=FlowEntry, skip_locked=True)
    return list(session.scalars(query))


def run_due(
    rt: Runtime, clock: Clock = utcnow, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> TickOutcome:
    """Advance every due entry (up to `max_batches` x `batch`), then enqueue the send batches."""
    from campaigns.jobs import enqueue_batches

    outcome = TickOutcome()
    lock = None
    with rt.session() as probe:
        serialise = probe.get_bind().dialect.name != "postgresql"
    if serialise:
        lock = rt.redis.lock("mailramp:flows:tick", timeout=600, blocking_timeout=0)
        if not lock.acquire():
            return outcome
    try:
        for _ in range(max_batches):
            now = clock()
            planned: list[PlannedBatch] = []
            with rt.session() as session:
                entries = claim(session, now, batch)
                book = advance_claimed(session, entries, now, rt.settings.batch_size, outcome)
                planned = book.planned()
            outcome.batches.extend(planned)
            # after the commit; resume_open_waves covers a loss here. An AI step's wave is scored first.
            enqueue_batches(rt, [b for b in planned if b.campaign_id not in book.ai])
            for wave_id in sorted({b.wave_id for b in planned if b.campaign_id in book.ai}):
                enqueue_batches(rt, [b for b in planned if b.wave_id == wave_id], score_first=True)
            if len(entries) < batch:
                break
    finally:
        if lock is not None and lock.owned():  # a tick longer than the lock's life lost it already
            lock.release()
    return outcome


def advance_claimed(
    session: Session, entries: list[FlowEntry], now: datetime, batch_size: int, outcome: TickOutcome
) -> WaveBook:
    """The batch set-based (campaigns.flows.bulk) in one savepoint; on any error that savepoint is
    rolled back and the batch advanced entry by entry, where a bad record fails alone."""
    book = WaveBook(batch_size)
    if not entries:
        return book
    try:
        with session.begin_nested():
            counts = advance_batch(session, entries, now, book)
    except Exception:
        log.warning("flow batch of %d entries: advancing them one by one", len(entries), exc_info=True)
    else:
        for name, count in counts.items():
            setattr(outcome, name, getattr(outcome, name) + count)
        return book
    book = WaveBook(batch_size)
    kept = []
    for entry in entries:
        try:
            session.refresh(entry)
        except InvalidRequestError:  # gone meanwhile (its contact erased): nothing to advance
            continue
        kept.append(entry)
    entries = kept
    # their contacts in one query: advance() finds them in the identity map
    session.scalars(sa.select(Contact).where(Contact.id.in_({e.contact_id for e in entries}))).all()
    for entry in entries:
        _advance_alone(session, entry, now, book, outcome)
    return book


def flow_tick_job() -> dict[str, int]:
    from campaigns import runtime

    outcome = run_due(runtime.current())
    return {
        "advanced": outcome.advanced,
        "sent": outcome.sent,
        "completed": outcome.completed,
        "exited": outcome.exited,
        "failed": outcome.failed,
        "deferred": outcome.deferred,
        "capped": outcome.capped,
    }


def _advance_alone(
    session: Session, entry: FlowEntry, now: datetime, book: WaveBook, out: TickOutcome
) -> None:
    entry_id = entry.id
    try:
        with session.begin_nested():
            advance(session, entry, now, book, out)
        book.keep()
        out.advanced += 1
    except Exception as exc:  # one bad record fails alone
        log.exception("flow entry %s failed at step %s", entry_id, entry.step_id)
        book.forget_failed()
        session.expire(entry)
        entry = session.get(FlowEntry, entry_id) or entry
        out.failed += 1
        entry.attempts += 1
        entry.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if entry.attempts >= MAX_ATTEMPTS:
            finish(session, entry, "exited", f"error: {entry.last_error}", now)
            out.exited += 1
        else:
            entry.next_due_at = now + timedelta(
                minutes=RETRY_MINUTES[min(entry.attempts, len(RETRY_MINUTES)) - 1]
            )


def advance(session: Session, entry: FlowEntry, now: datetime, book: WaveBook, out: TickOutcome) -> None:
    """Run the entry's steps until it waits, completes or exits (campaigns.flows.engine's rules)."""
    key = (entry.flow_id, entry.version)
    definition = book.definitions.get(key) or definition_of(session, entry.flow_id, entry.version)
    book.definitions[key] = definition  # versions never change: parsed once per transaction
    contact = session.get(Contact, entry.contact_id)
    if contact is None:  # erased meanwhile: the cascade removes the entry too
        finish(session, entry, "exited", "contact deleted", now)
        return
    for _ in range(MAX_HOPS):
        step_id = entry.step_id or None
        step = definition.step(step_id) if step_id else None
        exit_event = conditions.exit_seen(session, entry, definition) if step is not None else None
        holds = conditions.holds(session, entry, step, now) if isinstance(step, BranchStep) else None
        action = decide(
            definition, step_id, now, contact.timezone, exit_event=exit_event, condition_holds=holds
        )
        if isinstance(action, Exit | Complete):
            state = "exited" if isinstance(action, Exit) else "completed"
            reason = action.reason if isinstance(action, Exit) else ""
            finish(session, entry, state, reason, now, withdraw=exit_event is not None)
            out.exited += state == "exited"
            out.completed += state == "completed"
            return
        if isinstance(action, Goto):
            entry.step_id = action.step_id or ""
            continue
        if isinstance(action, Wait):
            entry.step_id, entry.next_due_at = action.next_step or "", action.due_at
            entry.attempts, entry.last_error = 0, ""
            return
        if isinstance(action, Send):
            flow = session.get(Flow, entry.flow_id)
            assert flow is not None
            verdict = book.rules.verdicts(session, [entry.contact_id], now)[entry.contact_id]
            if verdict.action == "defer":  # campaigns.flows.caps: wait at the step
                entry.next_due_at, entry.attempts, entry.last_error = verdict.defer_until or now, 0, ""
                out.deferred += 1
                return
            skipped = verdict.reason if verdict.action == "skip" else ""
            entry.last_send_id = write_send(session, flow, entry, action.step, book, now, skipped)
            out.sent += not skipped
            out.capped += bool(skipped)
            entry.step_id, entry.attempts, entry.last_error = action.next_step or "", 0, ""
            entry.next_due_at = now
            continue
    raise RuntimeError(f"flow {entry.flow_id}: more than {MAX_HOPS} steps in one run")


__all__ = ["FlowDefinition", "TickOutcome", "advance", "claim", "flow_tick_job", "run_due"]
