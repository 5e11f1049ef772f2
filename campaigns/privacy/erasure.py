"""Erasure of one person: the contact and everything derived from it, in the database and in Redis.

Kept: a SHA-256 of the address in the suppression list (`sha256:<hex>`), so a later import of the
same address is suppressed again instead of mailed; the campaign results and rollout aggregates
(counts, no person in them); and one audit entry naming the contact by its pseudonym only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.errors import NotFound
from campaigns.events.tracking import STREAM
from campaigns.privacy import audit
from campaigns.privacy.folding import fold_sends
from models import (
    ConsentRecord,
    Contact,
    Event,
    ImportRun,
    Interaction,
    Recommendation,
    Send,
    ShadowRender,
    Suppression,
    utcnow,
)
from models.db import dialect_insert

ERASED_PREFIX = "sha256:"
JOURNAL_KEYS = "mailramp:journal:*"


def address_hash(email: str) -> str:
    """The suppression list's form of an erased address (the address is already normalized)."""
    return ERASED_PREFIX + hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True)
class ErasureReport:
    contact_ref: str  # the audit log's pseudonym
    sends: int
    events: int
    interactions: int
    recommendations: int
    shadow_renders: int
    consent_records: int
    journal_entries: int
    stream_entries: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def erase_contact(session: Session, redis: Redis | None, contact_id: int, reason: str = "") -> ErasureReport:
    """Erase in the session's transaction (the caller commits), then clean Redis. Sends are folded
    into the campaign results first, so results and aggregates stay as they were."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    email = contact.email
    send_ids = sa.select(Send.id).where(Send.contact_id == contact_id)
    ids = set(session.scalars(send_ids))
    fold_sends(session, send_ids)

    def gone(statement: Any) -> int:
        return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]

    counts = {
        "shadow_renders": gone(sa.delete(ShadowRender).where(ShadowRender.send_id.in_(send_ids))),
        # every stored event has its send (ingest drops the others), and send_id is indexed
        "events": gone(sa.delete(Event).where(Event.send_id.in_(send_ids))),
        "interactions": gone(sa.delete(Interaction).where(Interaction.contact_id == contact_id)),
        "recommendations": gone(sa.delete(Recommendation).where(Recommendation.contact_id == contact_id)),
        "consent_records": gone(sa.delete(ConsentRecord).where(ConsentRecord.contact_id == contact_id)),
    }
    counts["sends"] = gone(sa.delete(Send).where(Send.contact_id == contact_id))
    session.execute(sa.delete(Suppression).where(Suppression.email == email))
    _scrub_import_reports(session, email)
    session.execute(
        dialect_insert(session)(Suppression)
        .values(email=address_hash(email), reason="erased", created_at=utcnow())
        .on_conflict_do_nothing()
    )
    session.execute(sa.delete(Contact).where(Contact.id == contact_id))
    session.expunge(contact)
    ref = audit.contact_ref(contact_id)
    journal, stream = _clean_redis(redis, ids) if redis is not None else (0, 0)
    report = ErasureReport(contact_ref=ref, journal_entries=journal, stream_entries=stream, **counts)
    audit.record(
        session, "erase", "contact", ref, summary=reason or "erasure request", after=report.as_dict()
    )
    session.flush()
    return report


def _scrub_import_reports(session: Session, email: str) -> None:
    """Import error reports quote bad or duplicate rows; drop the ones that quote this address."""
    runs = session.scalars(sa.select(ImportRun).where(sa.cast(ImportRun.errors, sa.Text).contains(email)))
    for run in runs:
        run.errors = [e for e in run.errors if email not in json.dumps(e)]


def _clean_redis(redis: Redis, send_ids: set[int]) -> tuple[int, int]:
    """Send journal lines (`<send id>|...`) and raw tracking events of these sends."""
    if not send_ids:
        return 0, 0
    journal = 0
    prefixes = tuple(f"{i}|".encode() for i in send_ids)
    for key in redis.scan_iter(match=JOURNAL_KEYS, count=500):
        for line in set(redis.lrange(key, 0, -1)):
            if line.startswith(prefixes):
                journal += int(redis.lrem(key, 0, line))
    stream = 0
    last = "-"
    while True:
        entries = redis.xrange(STREAM, min=last, max="+", count=1000)
        if last != "-":
            entries = entries[1:]
        if not entries:
            break
        doomed = [
            entry_id for entry_id, fields in entries if json.loads(fields[b"e"]).get("send_id") in send_ids
        ]
        if doomed:
            stream += int(redis.xdel(STREAM, *doomed))
        last = entries[-1][0].decode() if isinstance(entries[-1][0], bytes) else str(entries[-1][0])
    return journal, stream


def erased_addresses(session: Session, emails: Iterable[str]) -> set[str]:
    """Which of these (normalized) addresses were erased before."""
    by_hash = {address_hash(e): e for e in emails}
    if not by_hash:
        return set()
    found = session.scalars(sa.select(Suppression.email).where(Suppression.email.in_(list(by_hash))))
    return {by_hash[h] for h in found}


def suppress_again(session: Session, emails: Iterable[str]) -> set[str]:
    """Put erased addresses that come back (an import, the API) on the suppression list in clear:
    they are stored again anyway, and the send path matches addresses in clear. Returns them."""
    back = erased_addresses(session, emails)
    for email in sorted(back):
        session.execute(
            dialect_insert(session)(Suppression)
            .values(email=email, reason="erased", created_at=utcnow())
            .on_conflict_do_nothing()
        )
    return back
