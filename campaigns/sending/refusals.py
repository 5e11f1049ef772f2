"""What the send path does with the servers' refusals, once the ledger has recorded them.

A 5xx is a hard bounce, suppressed at once; a 4xx on the last attempt is a soft bounce (see
campaigns.sending.bounces). Both also go to the event stream, where ingest sets `bounced_at` and
the per-arm metrics. A 4xx deferral (421, 450, 451, 452) also slows its receiving domain group down
(campaigns.sending.throttling), whatever the attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from campaigns.events.tracking import RawEvent, push
from campaigns.runtime import Runtime
from campaigns.sending import bounces
from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.throttle_policy import DEFERRAL_CODES
from campaigns.sending.throttling import Throttle


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
    for result in results:
        if result.accepted or result.send_id not in recipients:
            continue
        email = recipients[result.send_id]
        if throttle is not None and smtp_code(result.error) in DEFERRAL_CODES:
            deferred.add(throttle.policy.group_of(email)[0])
        kind = bounces.smtp_kind(result.error)
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
    if events:
        session.commit()
        for e in events:
            push(rt.redis, e)
    if throttle is not None:
        for bucket in sorted(deferred):
            throttle.defer(bucket)
