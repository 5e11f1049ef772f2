"""Set-based advancing: a claimed batch of due entries moves through its steps in rounds, with one
query per fact per round rather than several per entry.

Each round takes the entries still moving, asks the database what the engine needs for all of them
at once (the contacts' time zones once; exit events once per run, one query per exit condition;
branch conditions, one query per branch step; the sending rules, one query per round with sends:
campaigns.flows.caps), lets `engine.decide` choose each entry's action, and
applies the actions together: send steps write their ledger rows through `sends.write_sends` (per
step campaign one read and one multi-row insert), entries that wait or end change in memory and are
flushed as one executemany UPDATE. Entries that sent or took a branch go on to the next round; a
round per hop, at most `MAX_HOPS`.

Same rules as the entry-by-entry path (`scheduler.advance`), with one difference in time: exit
events are read once per run, not before each hop (nothing a run does creates one). The caller runs
the batch in a savepoint and, on any error, rolls it back and advances the batch entry by entry,
where one bad record fails alone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.flows import conditions
from campaigns.flows.definition import BranchStep, FlowDefinition
from campaigns.flows.engine import MAX_HOPS, Complete, Exit, Goto, Send, Wait, decide
from campaigns.flows.sends import WaveBook, write_sends
from campaigns.flows.triggers import definition_of, finish
from models import Contact, Flow, FlowEntry
from models import Send as Ledger

Outcome = dict[str, int]  # advanced, sent, completed, exited


def advance_batch(session: Session, entries: list[FlowEntry], now: datetime, book: WaveBook) -> Outcome:
    """Advance every entry until it waits, completes or exits; the counts. Raises on any error (the
    caller's savepoint then holds none of it)."""
    out = {"advanced": len(entries), "sent": 0, "completed": 0, "exited": 0, "deferred": 0, "capped": 0}
    zones = dict(
        session.execute(
            sa.select(Contact.id, Contact.timezone).where(Contact.id.in_({e.contact_id for e in entries}))
        ).all()
    )
    flows = {
        f.id: f for f in session.scalars(sa.select(Flow).where(Flow.id.in_({e.flow_id for e in entries})))
    }
    definitions: dict[int, FlowDefinition] = {}
    for entry in entries:
        key = (entry.flow_id, entry.version)
        if key not in book.definitions:
            book.definitions[key] = definition_of(session, entry.flow_id, entry.version)
        definitions[entry.id] = book.definitions[key]
    exits = _exit_events(session, entries, definitions)
    withdrawn: dict[str, list[int]] = defaultdict(list)
    moving = []
    for entry in entries:
        if entry.contact_id not in zones:  # erased meanwhile: the cascade removes the entry too
            finish(session, entry, "exited", "contact deleted", now)
            out["exited"] += 1
        else:
            moving.append(entry)
    for _ in range(MAX_HOPS):
        if not moving:
            break
        holds = _branch_facts(session, moving, definitions, now)
        sends: list[tuple[Flow, FlowEntry, Send]] = []
        after: list[FlowEntry] = []
        for entry in moving:
            step_id = entry.step_id or None
            exit_event = exits.get(entry.id) if step_id is not None else None
            action = decide(
                definitions[entry.id],
                step_id,
                now,
                zones[entry.contact_id],
                exit_event=exit_event,
                condition_holds=holds.get(entry.id),
            )
            if isinstance(action, Exit | Complete):
                state = "exited" if isinstance(action, Exit) else "completed"
                reason = action.reason if isinstance(action, Exit) else ""
                finish(session, entry, state, reason, now)
                if exit_event is not None and entry.last_send_id is not None:
                    withdrawn[reason].append(entry.last_send_id)
                out[state] += 1
            elif isinstance(action, Goto):
                entry.step_id = action.step_id or ""
                after.append(entry)
            elif isinstance(action, Wait):
                entry.step_id, entry.next_due_at = action.next_step or "", action.due_at
                entry.attempts, entry.last_error = 0, ""
            elif isinstance(action, Send):
                sends.append((flows[entry.flow_id], entry, action))
        if sends:
            sends, skipped = _caps(session, sends, book, now, out)
            written = write_sends(session, [(f, e, a.step) for f, e, a in sends], book, now, skipped)
            for _flow, entry, action in sends:
                entry.last_send_id = written[entry.id]
                entry.step_id, entry.attempts, entry.last_error = action.next_step or "", 0, ""
                entry.next_due_at = now
                after.append(entry)
            out["sent"] += len(sends) - len(skipped)
        moving = after
    if moving:
        raise RuntimeError(f"{len(moving)} entries took more than {MAX_HOPS} steps in one run")
    for reason, send_ids in withdrawn.items():
        session.execute(
            sa.update(Ledger)
            .where(Ledger.id.in_(send_ids), Ledger.state == "queued")
            .values(state="skipped", error=f"flow journey ended: {reason}"[:2000])
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return out


def _caps(
    session: Session, sends: list[tuple[Flow, FlowEntry, Send]], book: WaveBook, now: datetime, out: Outcome
) -> tuple[list[tuple[Flow, FlowEntry, Send]], dict[int, str]]:
    """Frequency caps and quiet hours (campaigns.flows.caps), one query for the round: a deferred
    entry waits at its send step until the quiet hours end; a capped one gets its row `skipped`."""
    verdicts = book.rules.verdicts(session, {e.contact_id for _f, e, _a in sends}, now)
    kept, skipped = [], {}
    for flow, entry, action in sends:
        verdict = verdicts[entry.contact_id]
        if verdict.action == "defer":
            entry.next_due_at = verdict.defer_until or now
            entry.attempts, entry.last_error = 0, ""
            out["deferred"] += 1
            continue
        if verdict.action == "skip":
            skipped[entry.id] = verdict.reason
            out["capped"] += 1
        kept.append((flow, entry, action))
    return kept, skipped


def _exit_events(
    session: Session, entries: list[FlowEntry], definitions: dict[int, FlowDefinition]
) -> dict[int, str]:
    """Entry id -> the first exit condition's event seen since entry (one query per condition)."""
    by_event: dict[str, list[int]] = defaultdict(list)
    for entry in entries:
        for condition in definitions[entry.id].exit_conditions:
            by_event[condition.event].append(entry.id)
    seen: dict[int, set[str]] = defaultdict(set)
    for event, ids in by_event.items():
        for entry_id in conditions.happened_many(session, ids, event):
            seen[entry_id].add(event)
    out = {}
    for entry in entries:
        for condition in definitions[entry.id].exit_conditions:  # the definition's order decides
            if condition.event in seen.get(entry.id, ()):
                out[entry.id] = condition.event
                break
    return out


def _branch_facts(
    session: Session, entries: list[FlowEntry], definitions: dict[int, FlowDefinition], now: datetime
) -> dict[int, bool]:
    """Entry id -> whether its branch holds, for the entries at a branch step (one query per step)."""
    groups: dict[tuple[int, int, str], list[FlowEntry]] = defaultdict(list)
    steps: dict[tuple[int, int, str], BranchStep] = {}
    for entry in entries:
        if not entry.step_id:
            continue
        step = definitions[entry.id].step(entry.step_id)
        if isinstance(step, BranchStep):
            key = (entry.flow_id, entry.version, entry.step_id)
            groups[key].append(entry)
            steps[key] = step
    out: dict[int, bool] = {}
    for key, group in groups.items():
        true = conditions.holds_many(session, group, steps[key], now)
        out.update({e.id: e.id in true for e in group})
    return out
