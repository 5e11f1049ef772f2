"""Consent history: every grant and withdrawal of a contact's consent, with how, where from, the
request's IP and user agent, and the wording shown. `Contact.consent` stays the sendable flag; this
is the evidence behind it. Unsubscribes, complaints, bounces and suppressions are written here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.privacy.audit import current_actor
from models import ConsentRecord, Contact, Event, utcnow

WITHDRAWING_EVENTS = {"unsubscribe": "unsubscribe", "complaint": "complaint", "bounce": "bounce"}


def record(
    session: Session,
    contact_id: int,
    state: str,
    method: str,
    *,
    source: str = "",
    ip: str = "",
    user_agent: str = "",
    wording: str = "",
    evidence: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one step to a contact's consent history (in the caller's transaction)."""
    record_many(
        session,
        [
            {
                "contact_id": contact_id,
                "state": state,
                "method": method,
                "source": source,
                "ip": ip,
                "user_agent": user_agent,
                "wording": wording,
                "evidence": evidence or {},
                "at": at,
            }
        ],
    )


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    actor = current_actor().name[:400]
    now = utcnow()
    values = [
        {
            "contact_id": r["contact_id"],
            "state": r["state"],
            "method": r["method"],
            "source": str(r.get("source", ""))[:500],
            "ip": str(r.get("ip", ""))[:64],
            "user_agent": str(r.get("user_agent", ""))[:500],
            "wording": r.get("wording", ""),
            "evidence": r.get("evidence") or {},
            "actor": actor,
            "at": r.get("at") or now,
        }
        for r in rows
    ]
    session.execute(sa.insert(ConsentRecord), values)


def record_events(session: Session, events: Iterable[Event]) -> None:
    """Unsubscribes, complaints and bounces as they are ingested: consent withdrawn, by which campaign."""
    record_many(
        session,
        [
            {
                "contact_id": e.contact_id,
                "state": "withdrawn",
                "method": WITHDRAWING_EVENTS[e.kind],
                "source": f"campaign {e.campaign_id}" + (f", send {e.send_id}" if e.send_id else ""),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "at": e.occurred_at,
            }
            for e in events
            if e.kind in WITHDRAWING_EVENTS and e.contact_id is not None
        ],
    )


def record_suppression(session: Session, email: str, reason: str) -> None:
    """An address put on the suppression list: withdrawn for the contact that has it, if any."""
    record_suppressions(session, [email], reason)


def record_suppressions(session: Session, emails: Iterable[str], reason: str) -> None:
    """Addresses put on the suppression list (an import, a bounce, a complaint): one withdrawal for
    each that is a contact's (normalized addresses)."""
    wanted = sorted(set(emails))
    if not wanted:
        return
    ids = session.scalars(sa.select(Contact.id).where(Contact.email.in_(wanted)))
    record_many(
        session,
        [
            {
                "contact_id": i,
                "state": "withdrawn",
                "method": "suppression",
                "source": f"suppression list: {reason}",
            }
            for i in ids
        ],
    )


def history(session: Session, contact_id: int) -> list[ConsentRecord]:
    """Oldest first."""
    return list(
        session.scalars(
            sa.select(ConsentRecord)
            .where(ConsentRecord.contact_id == contact_id)
            .order_by(ConsentRecord.at, ConsentRecord.id)
        )
    )


def latest_state(session: Session, contact_id: int) -> str | None:
    return session.scalar(
        sa.select(ConsentRecord.state)
        .where(ConsentRecord.contact_id == contact_id)
        .order_by(ConsentRecord.at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )


def record_json(row: ConsentRecord) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "state": row.state,
        "method": row.method,
        "source": row.source,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "wording": row.wording,
        "evidence": row.evidence,
        "actor": row.actor,
    }
