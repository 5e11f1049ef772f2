"""Frequency caps and quiet hours against the send ledger: the workspace's sending rules, the verdicts
for many contacts from one query, and the claim that makes the caps exact across workers.

What counts toward a contact's caps (campaign and flow sends alike, whatever the campaign): its
ledger rows `sent` within the window (by `sent_at`), `sending` (in flight now), and `queued` rows
already claimed within the window (`claimed_at`: they passed the caps and will go out).

**Concurrency.** `claim_sends` decides and claims in one transaction that first locks the contacts'
rows (PostgreSQL: `SELECT ... FOR NO KEY UPDATE`, in id order; SQLite: the transaction starts with a
write, so it holds the database's one write lock). Two workers claiming for the same contact at the
same moment run one after the other, and the second counts the first's claim: a cap is never
exceeded by sends that went through `claim_sends` (tests/campaigns/test_caps_claims.py). The locks
are held until the caller commits, which should be at once.

A skipped row is `skipped` with the reason in `error` ("frequency cap: 2 in 24 h"); a deferred row
stays `queued` with `not_before` at the end of the contact's quiet hours and the reason in `error`
("quiet hours: until 08:00 Europe/Paris"); it is not claimed, so the caps are looked at again when
it is due. The batch comes back for it as for local-time delivery (campaigns.sending.send).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.sending.caps import DAY, SendingRules, Verdict, judge
from models import Contact, Send, WorkspaceSetting

SETTING_KEY = "sending_rules"
QUIET_PREFIX = "quiet hours"


def load_rules(session: Session) -> SendingRules:
    row = session.get(WorkspaceSetting, SETTING_KEY)
    return SendingRules.from_json(row.value if row is not None else None)


def save_rules(session: Session, value: Mapping[str, Any], actor: str) -> SendingRules:
    """Store rules validated by their schema (app.api.sending_rules.SendingRulesIn)."""
    rules = SendingRules.from_json(value)
    row = session.get(WorkspaceSetting, SETTING_KEY)
    if row is None:
        session.add(WorkspaceSetting(key=SETTING_KEY, value=rules.to_json(), updated_by=actor))
    else:
        row.value, row.updated_by = rules.to_json(), actor
    session.flush()
    return rules


def decide(
    session: Session,
    contact_ids: Collection[int],
    kind: str,
    now: datetime,
    rules: SendingRules | None = None,
) -> dict[int, Verdict]:
    """Contact id -> verdict, from one query over the ledger and the contacts. Read only: a caller
    that sends on it without `claim_sends` may exceed a cap by what another worker sends at the same
    moment. Unknown contact ids are left out."""
    rules = load_rules(session) if rules is None else rules
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    if kind == "transactional" or not rules.active:
        return {i: judge(rules, kind, now, 0, 0, None) for i in ids}
    return {
        cid: judge(rules, kind, now, n24, n7, tz)
        for cid, (tz, n24, n7) in _counts(session, ids, rules, now).items()
    }


def _counts(
    session: Session, ids: list[int], rules: SendingRules, now: datetime
) -> dict[int, tuple[str, int, int]]:
    """Contact id -> (time zone, sends counted in 24 h, in the caps' whole window)."""
    rows = session.execute(_counts_query(ids, rules, now)).all()
    return {int(cid): (str(tz or ""), int(n24), int(n7)) for cid, tz, n24, n7 in rows}


def _counts_query(ids: list[int], rules: SendingRules, now: datetime) -> sa.Select[int, str, Any, Any]:
    since = now - rules.window
    day = now - DAY
    counted = sa.or_(
        sa.and_(Send.state == "sent", Send.sent_at > since),
        Send.state == "sending",
        sa.and_(Send.state == "queued", Send.claimed_at > since),
    )
    at = sa.case((Send.state == "sent", Send.sent_at), else_=sa.func.coalesce(Send.claimed_at, now))
    recent = (
        sa.select(
            Send.contact_id.label("contact_id"),
            sa.func.sum(sa.case((at > day, 1), else_=0)).label("n24"),
            sa.func.count().label("n7"),
        )
        .where(Send.contact_id.in_(ids), Send.state.in_(("sent", "sending", "queued")), counted)
        .group_by(Send.contact_id)
        .subquery()
    )
    return (
        sa.select(
            Contact.id,
            Contact.timezone,
            sa.func.coalesce(recent.c.n24, 0),
            sa.func.coalesce(recent.c.n7, 0),
        )
        .outerjoin(recent, recent.c.contact_id == Contact.id)
        .where(Contact.id.in_(ids))
    )


@dataclass
class ClaimOutcome:
    claimed: int = 0
    skipped: int = 0
    deferred: int = 0
    next_due: datetime | None = None  # the earliest deferral: when to come back


def claim_sends(
    session: Session,
    send_ids: Collection[int],
    kind: str,
    now: datetime,
    rules: SendingRules | None = None,
) -> ClaimOutcome:
    """Judge the `queued`, unclaimed ledger rows among `send_ids` and write the verdicts: claimed
    (`claimed_at = now`), skipped, or deferred (see the module's docstring). Start it in a fresh
    transaction and commit right after (the contacts stay locked until then)."""
    rules = load_rules(session) if rules is None else rules
    out = ClaimOutcome()
    if not send_ids or kind == "transactional" or not rules.active:
        return out
    ids = sorted(set(send_ids))
    open_row = sa.and_(Send.id.in_(ids), Send.state == "queued", Send.claimed_at.is_(None))
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:  # SQLite: begin with a write, so this transaction holds the write lock throughout
        session.execute(
            sa.update(Send)
            .where(open_row)
            .values(claimed_at=None)
            .execution_options(synchronize_session=False)
        )
    rows = session.execute(sa.select(Send.id, Send.contact_id).where(open_row)).all()
    if not rows:
        return out
    contact_ids = sorted({int(c) for _, c in rows})
    if postgres:
        session.execute(
            sa.select(Contact.id)
            .where(Contact.id.in_(contact_ids))
            .order_by(Contact.id)
            .with_for_update(key_share=True)
        )
    counts = _counts(session, contact_ids, rules, now)
    claim: list[int] = []
    # rows by what is written to them: a few groups (one per cap, one per zone's end of quiet hours)
    held: dict[tuple[str, str, datetime | None], list[int]] = defaultdict(list)
    seen: dict[int, int] = {}  # contact -> rows claimed in this call (several rows, one contact)
    for send_id, contact_id in rows:
        if int(contact_id) not in counts:  # the contact is gone (its rows go with it)
            continue
        tz, n24, n7 = counts[int(contact_id)]
        more = seen.get(int(contact_id), 0)
        verdict = judge(rules, kind, now, n24 + more, n7 + more, tz)
        if verdict.action == "defer":
            held["queued", verdict.reason, verdict.defer_until].append(int(send_id))
        elif verdict.action == "skip":
            held["skipped", verdict.reason, None].append(int(send_id))
        else:
            claim.append(int(send_id))
            seen[int(contact_id)] = seen.get(int(contact_id), 0) + 1
    _write(session, claim, held, now)
    out.claimed = len(claim)
    out.skipped = sum(len(v) for (state, _, _), v in held.items() if state == "skipped")
    out.deferred = sum(len(v) for (state, _, _), v in held.items() if state == "queued")
    out.next_due = min((at for _, _, at in held if at is not None), default=None)
    return out


def _write(
    session: Session,
    claim: list[int],
    held: dict[tuple[str, str, datetime | None], list[int]],
    now: datetime,
) -> None:
    """One UPDATE for the claimed rows, one per group of held rows; each only where the row is
    still `queued` and unclaimed."""
    table: sa.Table = Send.__table__  # type: ignore[assignment]
    still_open = sa.and_(table.c.state == "queued", table.c.claimed_at.is_(None))
    if claim:
        quiet = table.c.error.like(QUIET_PREFIX + "%")
        session.execute(
            sa.update(table)
            .where(table.c.id.in_(claim), still_open)
            .values(claimed_at=now, error=sa.case((quiet, ""), else_=table.c.error))
        )
    for (state, reason, until), ids in held.items():
        values: dict[str, Any] = {"state": state, "error": reason}
        if until is not None:
            values["not_before"] = until
        session.execute(sa.update(table).where(table.c.id.in_(ids), still_open).values(**values))


def hold_batch(
    session: Session, wave_id: int, batch: int, now: datetime, rules: SendingRules
) -> ClaimOutcome:
    """The campaign send path's call, before it reads the rows to send: the batch's due rows that
    are not yet claimed are claimed, skipped or deferred. Nothing to do (no query) with no rule on."""
    if not rules.active:
        return ClaimOutcome()
    due = list(
        session.scalars(
            sa.select(Send.id).where(
                Send.wave_id == wave_id,
                Send.batch == batch,
                Send.state == "queued",
                Send.claimed_at.is_(None),
                sa.or_(Send.not_before.is_(None), Send.not_before <= now),
            )
        )
    )
    session.commit()  # the claim starts its own transaction (see claim_sends)
    if not due:
        return ClaimOutcome()
    out = claim_sends(session, due, "campaign", now, rules)
    session.commit()
    return out
