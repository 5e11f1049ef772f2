"""Erasure of one person: the contact and everything derived from it, in the database and in Redis.

Kept: a SHA-256 of the address in the suppression list (`sha256:<hex>`), so a later import of the
same address is suppressed again instead of mailed; the bounce and complaint log under the same hash,
with its diagnostic cut to the reply code (servers quote the address in the rest), so soft-bounce
counts and deliverability figures still add up; the campaign results and rollout aggregates
(counts, no person in them); and one audit entry naming the contact by its pseudonym only.

Redis: the send journal and raw events of the contact's sends are deleted, then, where Redis keeps
an append-only file, it is rewritten (BGREWRITEAOF) so the deleted entries leave the file too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from campaigns.errors import NotFound
from campaigns.events.tracking import STREAM
from campaigns.privacy import audit
from campaigns.privacy.folding import fold_sends
from models import (
    Bounce,
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

log = logging.getLogger(__name__)
ERASED_PREFIX = "sha256:"
JOURNAL_KEYS = "mailramp:journal:*"
_REPLY_CODE = re.compile(r"^\s*(?:[a-z]+:\s*)?(\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?)", re.IGNORECASE)


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
    _hash_bounces(session, email, ids)
    session.execute(sa.delete(Suppression).where(Suppression.email == email))
    _scrub_import_reports(session, email)
    if contact.external_id:
        _scrub_import_reports(session, contact.external_id)
    session.execute(
        dialect_insert(session)(Suppression)
        .values(email=address_hash(email), reason="erased", created_at=utcnow())
        .on_conflict_do_nothing()
    )
    session.execute(sa.delete(Contact).where(Contact.id == contact_id))
    session.expunge(contact)
    ref = audit.contact_ref(contact_id)
    journal, stream = _clean_redis(redis, ids) if redis is not None else (0, 0)
    if redis is not None:
        rewrite_append_only_file(redis)
    report = ErasureReport(contact_ref=ref, journal_entries=journal, stream_entries=stream, **counts)
    audit.record(
        session, "erase", "contact", ref, summary=reason or "erasure request", after=report.as_dict()
    )
    session.flush()
    return report


def _hash_bounces(session: Session, email: str, send_ids: set[int]) -> None:
    """The contact's bounce and complaint records keep their kind, source, date and reply code, under
    the address's hash; the diagnostic text (which quotes the address) and the send go."""
    rows = session.scalars(
        sa.select(Bounce).where(
            sa.or_(Bounce.email == email, Bounce.send_id.in_(send_ids) if send_ids else sa.false())
        )
    )
    for row in rows:
        match = _REPLY_CODE.match(row.detail or "")
        row.email = address_hash(email)
        row.send_id = None
        row.detail = (match.group(1) + " " if match else "") + "(detail removed at erasure)"


def rewrite_append_only_file(redis: Redis) -> bool:
    """BGREWRITEAOF when Redis keeps an append-only file, so what was just deleted leaves the file
    too; False (logged) when it has none or refuses (a managed Redis may forbid CONFIG)."""
    try:
        value = next(iter(redis.config_get("appendonly").values()), b"")
        if (value.decode() if isinstance(value, bytes) else str(value)) != "yes":
            return False
        redis.bgrewriteaof()
    except RedisError as exc:
        if "already in progress" not in str(exc):
            log.warning("could not rewrite Redis's append-only file after an erasure: %s", exc)
            return False
    return True


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
