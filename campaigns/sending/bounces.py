"""Bounces and complaints: what a refusal or a report means for the contact and the list.

- A hard bounce (an SMTP 5xx, or a DSN / ESP event saying the address does not exist) suppresses the
  address at once, with the reply as the reason.
- A soft bounce (a 4xx still refused after the last retry, a delayed-then-failed DSN, a mailbox-full
  ESP event) is logged; `SoftBouncePolicy.limit` of them within `days` suppress the address.
- A complaint (an ARF report, an ESP spam report) suppresses the address at once.

Every report is logged in `bounces`. The rollout's per-arm ``bounce`` and ``complaint`` metrics come
from the event stream (campaigns.events.ingest), which the send path and every inbound route feed.

The envelope sender (Return-Path) is a VERP address, ``bounce+<send id>.<signature>@<bounce
domain>``, so a bounce message names the send it is about even when it quotes nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.events.tracking import RawEvent, push
from models import Bounce, Contact, Send, Suppression, utcnow
from models.db import dialect_insert

HARD, SOFT, COMPLAINT = "hard", "soft", "complaint"
_CODE = re.compile(r"^\s*([245])\d\d\b")
_VERP = re.compile(r"^bounce\+(\d+)\.([0-9a-f]{16})@", re.IGNORECASE)


@dataclass(frozen=True)
class SoftBouncePolicy:
    limit: int = 3  # soft bounces ...
    days: int = 30  # ... within this many days suppress the address


@dataclass(frozen=True)
class BounceReport:
    kind: str  # hard | soft | complaint
    source: str  # smtp | dsn | arf | ses | sendgrid | postmark | mailgun | api
    detail: str
    send_id: int | None = None
    email: str = ""


def smtp_kind(error: str) -> str | None:
    """`550 ...` -> hard, `421 ...` -> soft, anything else (connection trouble) -> None."""
    match = _CODE.match(error)
    if match is None:
        return None
    return {"5": HARD, "4": SOFT}.get(match.group(1))


def _verp_mac(secret: str, send_id: int) -> str:
    return hmac.new(secret.encode(), f"verp:{send_id}".encode(), hashlib.sha256).hexdigest()[:16]


def verp_address(secret: str, send_id: int, bounce_domain: str) -> str:
    return f"bounce+{send_id}.{_verp_mac(secret, send_id)}@{bounce_domain}"


def return_path(settings: Any) -> Callable[[int], str] | None:
    """The envelope sender per send (VERP), or None to use the From address (no BOUNCE_DOMAIN)."""
    domain, secret = settings.bounce_domain, settings.secret_key
    if not domain:
        return None
    return lambda send_id: verp_address(secret, send_id, domain)


def parse_verp(secret: str, address: str) -> int | None:
    """The send a VERP address names, if its signature holds (compared in constant time)."""
    match = _VERP.match(address.strip().strip("<>"))
    if match is None:
        return None
    send_id = int(match.group(1))
    return send_id if hmac.compare_digest(match.group(2).lower(), _verp_mac(secret, send_id)) else None


def apply(session: Session, report: BounceReport, policy: SoftBouncePolicy) -> bool:
    """Log the report and act on it; True when the address is (now) suppressed."""
    email = report.email.strip().lower()
    if not email:
        return False
    session.add(
        Bounce(
            email=email, kind=report.kind, source=report.source, send_id=report.send_id, detail=report.detail
        )
    )
    session.flush()
    if report.kind == HARD:
        _suppress(session, email, "bounce", "bounced", f"{report.source}: {report.detail}")
        return True
    if report.kind == COMPLAINT:
        _suppress(session, email, "complaint", "complained", f"{report.source}: {report.detail}")
        return True
    since = utcnow() - timedelta(days=policy.days)
    count = int(
        session.scalar(
            sa.select(sa.func.count()).where(
                Bounce.email == email, Bounce.kind == SOFT, Bounce.created_at >= since
            )
        )
        or 0
    )
    if count >= policy.limit:
        detail = f"{count} soft bounces within {policy.days} days; last: {report.source}: {report.detail}"
        _suppress(session, email, "bounce", "bounced", detail)
        return True
    return False


def _suppress(session: Session, email: str, reason: str, status: str, detail: str) -> None:
    session.execute(
        dialect_insert(session)(Suppression)
        .values(email=email, reason=reason, detail=detail[:2000], created_at=utcnow())
        .on_conflict_do_nothing()
    )
    session.execute(
        sa.update(Contact)
        .where(Contact.email == email, Contact.status == "active")
        .values(status=status, updated_at=utcnow())
    )


EVENT_OF = {HARD: "bounce", SOFT: "soft_bounce", COMPLAINT: "complaint"}


def resolve_send(
    session: Session,
    *,
    send_id: int | None,
    message_id: str = "",
    email: str = "",
    latest_to_address: bool = True,
) -> int | None:
    """The send a report is about, or None when the report identifies no real send:

    1. a VERP-named send (`send_id`, its signature already checked by `parse_verp`);
    2. the send whose Message-ID the report quotes, when it went to the address the report names
       (any address, when the report names none);
    3. only with `latest_to_address`, for reports an ESP signed (it reports only on mail it carried
       for us): the address's latest sent email. Reports mailed to the bounce domain never use this:
       anyone can mail one, naming any address."""
    if send_id is not None and session.get(Send, send_id) is not None:
        return send_id
    address = email.strip().lower()
    if message_id:
        bare = message_id.strip().strip("<>")
        found = session.execute(
            sa.select(Send.id, Contact.email)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.message_id == f"<{bare}>")
        ).first()
        if found is not None and (not address or found.email == address):
            return int(found.id)
    if address and latest_to_address:
        found_id = session.scalar(
            sa.select(Send.id)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Contact.email == address, Send.state.in_(("sent", "failed")))
            .order_by(Send.sent_at.desc().nulls_last(), Send.id.desc())
            .limit(1)
        )
        if found_id is not None:
            return int(found_id)
    return None


def push_report(redis: Redis, send_id: int, kind: str, source: str, detail: str) -> None:
    """To the event stream: ingest logs it, acts on it (bounces.apply) and counts it per arm.
    Soft bounces are keyed per report (several may count); a send bounces or complains once."""
    event = EVENT_OF[kind]
    key = (
        f"{event}:{send_id}"
        if kind != SOFT
        else f"{event}:{send_id}:{hashlib.sha256(detail.encode()).hexdigest()[:12]}"
    )
    push(redis, RawEvent(event, send_id, key=key[:100], detail=detail[:2000], source=source))
