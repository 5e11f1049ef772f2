"""What the send path does with the servers' refusals, once the ledger has recorded them.

A 5xx is a hard bounce, suppressed at once; a 4xx (or a 552) on the last attempt is a soft bounce
(see campaigns.sending.bounces). Both also go to the event stream, where ingest sets `bounced_at`
and the per-arm metrics.

Deferrals stay with what they are about:
- a recipient's (450, 451, 452, 552: a full or busy mailbox, greylisting) defers that recipient
  only: its ledger row waits `ThrottlePolicy.recipient_backoff(attempts)` (`not_before`), and the
  domain's other recipients go on at full speed;
- the server's (421) slows its whole receiving domain group down (campaigns.sending.throttling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.events.tracking import RawEvent, push
from campaigns.runtime import Runtime
from campaigns.sending import bounces
from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.throttle_policy import (
    DOMAIN_DEFERRAL_CODES,
    RECIPIENT_DEFERRAL_CODES,
    ThrottlePolicy,
)
from campaigns.sending.throttling import Throttle
from models import Send, utcnow


def smtp_code(error: str) -> int | None:
    head = error[:3]
    return int(head) if head.isdigit() else None


def act_on_refusals(
    rt: Runtime,
    session: Session,
    results: Sequence[DeliveryResult],
    recipients: Mapping[int, str],
    attempts: Mapping[int, int],
    max_attempts: int,
    throttle: Throttle | None,
) -> None:
    policy = bounces.SoftBouncePolicy(rt.settings.soft_bounce_limit, rt.settings.soft_bounce_days)
    events = []
    deferred: set[str] = set()
    waits: list[dict[str, object]] = []
    limits = throttle.policy if throttle is not None else ThrottlePolicy()
    now = utcnow()
    for result in results:
        if result.accepted or result.send_id not in recipients:
            continue
        email = recipients[result.send_id]
        code = smtp_code(result.error)
        if throttle is not None and code in DOMAIN_DEFERRAL_CODES:
            deferred.add(throttle.policy.group_of(email)[0])
        tries = attempts.get(result.send_id, 0)
        if code in RECIPIENT_DEFERRAL_CODES and tries < max_attempts:
            wait = timedelta(seconds=limits.recipient_backoff(tries))
            waits.append({"b_id": result.send_id, "b_at": now + wait})
        kind = bounces.SOFT if code in RECIPIENT_DEFERRAL_CODES else bounces.smtp_kind(result.error)
        if kind == bounces.HARD and result.permanent:
            event = "bounce"
        elif kind == bounces.SOFT and attempts.get(result.send_id, 0) >= max_attempts:
            event = "soft_bounce"
        else:
            continue
        bounces.apply(
            session, bounces.BounceReport(kind, "smtp", result.error, result.send_id, email), policy
        )
        events.append(
            RawEvent(
                event, result.send_id, key=f"{event}:{result.send_id}", detail=result.error, source="smtp"
            )
        )
    if waits:  # only rows still queued (a recipient's deferral): never one already sent or failed
        sends: sa.Table = Send.__table__  # type: ignore[assignment]
        session.execute(
            sa.update(sends)
            .where(sends.c.id == sa.bindparam("b_id"), sends.c.state == "queued")
            .values(not_before=sa.bindparam("b_at")),
            waits,
        )
        session.commit()
    if events:
        session.commit()
        for e in events:
            push(rt.redis, e)
    if throttle is not None:
        for bucket in sorted(deferred):
            throttle.defer(bucket)
