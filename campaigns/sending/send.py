"""Send one batch: assign arms in bulk, look up recommendations, render with the template compiled
once, build MIME with signed links and DKIM, deliver over several SMTP connections within each
receiving domain's limits (campaigns.sending.throttling, .lanes), and move each ledger row
`queued -> sending -> sent | failed` (see campaigns.sending.journal for why this never sends twice).

Fail closed: any error while choosing or rendering AI content sends the control content (logged,
`content = "fallback"`). The kill switch is re-read from the database before every chunk.

One bad record fails alone: a row whose address cannot be sent to or whose message cannot be
rendered or built is `failed` at once with its reason (campaigns.sending.prepare), a row the server
refuses for good (5xx) is `failed` with the reply; the batch and the wave go on.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import sqlalchemy as sa
from redis.lock import Lock
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import is_demo_campaign
from campaigns.content.render import CompiledTemplate
from campaigns.content.templates import compiled
from campaigns.recommender.service import LookupMemo
from campaigns.runtime import Runtime
from campaigns.sending import bounces, webview
from campaigns.sending.batch_lock import release, renew, take_batch_lock
from campaigns.sending.builders import campaign_builder
from campaigns.sending.cap_claims import hold_batch, load_rules
from campaigns.sending.caps import SendingRules
from campaigns.sending.delivery import DeliveryResult, SmtpConfig, SmtpTransport
from campaigns.sending.demo_transport import DemoTransport, demo_url
from campaigns.sending.dkim import signer_for
from campaigns.sending.journal import SendJournal
from campaigns.sending.lanes import Delivery, Lanes, TransportFactory, short_gil_switches
from campaigns.sending.ledger import record
from campaigns.sending.liveness import HOST
from campaigns.sending.message import MessageBuilder
from campaigns.sending.planner import finish_wave_if_done
from campaigns.sending.prepare import Pending, Prepared, Refused, prepare_chunk
from campaigns.sending.refusals import act_on_refusals, smtp_code
from campaigns.sending.throttle_policy import DEFERRAL_CODES, throttle_policy
from campaigns.sending.throttling import Throttle, admit_chunk
from models import Campaign, Contact, Send, Suppression, Template, utcnow

log = logging.getLogger(__name__)
CHUNK = 250  # the kill switch is re-read before every chunk
MAX_ATTEMPTS = 5
MIN_PASS_SECONDS = 0.1  # between two passes over rows the throttle held back
LEASE_RETRY_SECONDS = 0.2  # rows held for want of a free connection to their domain group
THROTTLED = "throttled: waiting for the receiving domain's rate limit"


class TemporaryFailure(RuntimeError):
    """Some messages failed for now (4xx, connection trouble); rq retries the batch later."""


@dataclass
class BatchOutcome:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retry_later: int = 0
    retry_later_unthrottled: bool = False  # connection trouble: rq's retry schedule, not the throttle's
    throttled: int = 0  # rows held back by the throttle when the batch stopped
    retry_in: float = 0.0  # seconds until the throttle admits more: the job re-enqueues itself then
    recovered_from_journal: int = 0
    busy: bool = False
    wave_finished: bool = False
    arms: dict[str, int] = field(default_factory=dict)


def default_transport(url: str) -> SmtpTransport:
    return SmtpTransport(SmtpConfig.from_url(url))


def send_batch(
    rt: Runtime,
    campaign_id: int,
    wave_id: int,
    batch: int,
    transport_factory: TransportFactory = default_transport,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome:
    outcome = BatchOutcome()
    lock = take_batch_lock(rt.redis, wave_id, batch)
    if lock is None:  # another live worker is sending this batch; it will finish it
        outcome.busy = True
        return outcome
    journal = SendJournal(rt.redis, wave_id, batch)
    session = rt.session_factory()
    try:
        outcome.recovered_from_journal = _apply_journal(session, journal)
        campaign = session.get(Campaign, campaign_id)
        template = session.get(Template, campaign.template_id) if campaign else None
        if campaign is None or template is None:
            raise LookupError(f"campaign {campaign_id} or its template is gone")
        outcome.skipped = _skip_unsendable(session, wave_id, batch)
        rules = load_rules(session)  # frequency caps and quiet hours (campaigns.sending.cap_claims)
        outcome.skipped += hold_batch(session, wave_id, batch, utcnow(), rules).skipped
        pending = _pending(session, wave_id, batch)
        if not pending:  # every due row sent or held: come back for rows deferred to later
            _come_back_for_deferred(session, outcome, wave_id, batch)
        if pending:
            builder = campaign_builder(
                session,
                rt.settings,
                campaign,
                dkim=signer_for(session, campaign.from_email),
                return_path=bounces.return_path(rt.settings),
                web_version=webview.url_maker(rt.settings),
            )
            work = _Work(rt, session, campaign, compiled(template), builder, journal, lock, outcome, rules)
            url = rt.settings.smtp_url
            if is_demo_campaign(campaign.from_email):  # never out of the installation
                url = demo_url(url, rt.settings.instance_path)
                transport_factory = cast(TransportFactory, DemoTransport)
            with (
                Lanes(
                    transport_factory,
                    url,
                    rt.settings.smtp_connections,
                    journal,
                    rt.settings.smtp_dots_in_flight,
                ) as lanes,
                short_gil_switches(),
            ):
                _deliver_with_throttle(work, lanes, pending, wave_id, batch, sleep)
        outcome.wave_finished = finish_wave_if_done(session, wave_id)
        session.commit()
    finally:
        session.close()
        release(lock)
    if outcome.retry_later:
        raise TemporaryFailure(f"{outcome.retry_later} messages of batch {batch} failed for now; retrying")
    return outcome


@dataclass
class _Work:
    rt: Runtime
    session: Session
    campaign: Campaign
    tmpl: CompiledTemplate
    builder: MessageBuilder
    journal: SendJournal
    lock: Lock
    outcome: BatchOutcome
    rules: SendingRules
    throttle: Throttle | None = None
    lease_owner: str = field(default_factory=lambda: f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    leased_buckets: set[str] = field(default_factory=set)
    memo: LookupMemo = field(default_factory=LookupMemo)  # the recommender's per-batch constants


def _deliver_with_throttle(
    work: _Work,
    lanes: Lanes,
    pending: list[Pending],
    wave_id: int,
    batch: int,
    sleep: Callable[[float], None],
) -> None:
    """Pass over the batch's open rows, sending what the throttle admits, until none is left or the
    next admission is further away than the policy's inline wait (then `outcome.retry_in` says when
    to try again). Held-back rows stay `queued`, untouched; deferred rows are `queued` with the reply."""
    # a demo campaign's messages stay in the installation: no receiving domain to be gentle with
    policy = None if is_demo_campaign(work.campaign.from_email) else throttle_policy(work.rt.settings)
    work.throttle = Throttle(work.rt.redis, policy) if policy else None
    while True:
        try:
            held, wait = _send_pass(work, lanes, pending)
        finally:  # connections are leased for one pass at a time: a waiting batch holds none
            if work.throttle is not None and work.leased_buckets:
                work.throttle.release(work.leased_buckets, lanes.count, work.lease_owner)
                work.leased_buckets.clear()
        renew(work.lock)
        if work.throttle is None or work.outcome.retry_later_unthrottled:
            break  # connection trouble (or no throttling): rq retries the batch later
        work.outcome.skipped += hold_batch(work.session, wave_id, batch, utcnow(), work.rules).skipped
        pending = _pending(work.session, wave_id, batch)
        if not pending:
            work.outcome.retry_later = 0  # deferred rows were retried and settled in a later pass
            break
        if held:
            _mark_throttled(work.session, held)
        if wait > work.throttle.policy.max_inline_wait_seconds:
            work.outcome.retry_in = wait
            work.outcome.retry_later = 0  # re-enqueued after `retry_in`, not retried by rq
            break
        sleep(max(wait, MIN_PASS_SECONDS))
    work.outcome.throttled = len(pending) if work.outcome.retry_in else 0
    if not work.outcome.retry_later_unthrottled:
        _come_back_for_deferred(work.session, work.outcome, wave_id, batch)


def _come_back_for_deferred(session: Session, outcome: BatchOutcome, wave_id: int, batch: int) -> None:
    """Recipients deferred with their own backoff (campaigns.sending.refusals) or to the end of their
    quiet hours (campaigns.sending.cap_claims) wait in `not_before`: the batch comes back when the
    first of them is due (rq's retry schedule is not theirs)."""
    now = utcnow()
    due = session.scalar(
        sa.select(sa.func.min(Send.not_before)).where(
            Send.wave_id == wave_id, Send.batch == batch, Send.state == "queued", Send.not_before > now
        )
    )
    if due is None:
        return
    seconds = max(MIN_PASS_SECONDS, (due - now).total_seconds())
    outcome.retry_in = min(outcome.retry_in, seconds) if outcome.retry_in else seconds
    outcome.retry_later = 0  # re-enqueued after `retry_in`, not retried by rq


def _send_pass(work: _Work, lanes: Lanes, pending: Sequence[Pending]) -> tuple[list[int], float]:
    """One pass: returns the send ids held back and the seconds until the throttle admits more."""
    held: list[int] = []
    wait = 0.0
    in_flight: tuple[list[Prepared], Delivery] | None = None
    sender_domain = work.campaign.from_email.rpartition("@")[2]
    for chunk in _chunks(pending, CHUNK):
        admitted = list(chunk)
        lanes_of = None
        if work.throttle is not None:
            admitted, held_now, chunk_wait = admit_chunk(work.throttle, chunk, sender_domain)
            admitted, no_lane, lanes_of = _lease_lanes(work, lanes, admitted)
            held_now += no_lane
            held += [p.send_id for p in held_now]
            if no_lane:
                chunk_wait = min(chunk_wait, LEASE_RETRY_SECONDS) if chunk_wait else LEASE_RETRY_SECONDS
            if held_now:
                wait = chunk_wait if not wait else min(wait, chunk_wait)
        if not admitted:
            continue
        chunk_out = prepare_chunk(work.session, work.campaign, work.tmpl, work.builder, admitted, work.memo)
        if chunk_out.refused:
            _fail_refused(work, chunk_out.refused)
        prepared = chunk_out.prepared
        if not prepared:
            continue
        messages = [p.message for p in prepared]
        if in_flight is None:
            in_flight = (prepared, lanes.submit(messages, lanes_of))
            continue
        done, results = in_flight[0], in_flight[1].result()
        # the next chunk goes out while this one is recorded: its journal entries all follow this
        # chunk's, so `drop_first` in _finish_chunk still drops exactly this chunk's
        in_flight = (prepared, lanes.submit(messages, lanes_of))
        _finish_chunk(work, done, results)
    if in_flight is not None:
        _finish_chunk(work, in_flight[0], in_flight[1].result())
    return held, wait


def _lease_lanes(
    work: _Work, lanes: Lanes, admitted: list[Pending]
) -> tuple[list[Pending], list[Pending], Callable[[str], Sequence[int]] | None]:
    """Connections per receiving domain group across every worker: rows of a group with no free
    connection are held back like throttled ones."""
    assert work.throttle is not None
    policy = work.throttle.policy
    bucket = {p.email: policy.group_of(p.email)[0] for p in admitted}
    leased = work.throttle.lease(bucket.values(), lanes.count, work.lease_owner)
    work.leased_buckets.update(leased)
    keep = [p for p in admitted if leased.get(bucket[p.email])]
    no_lane = [p for p in admitted if not leased.get(bucket[p.email])]
    return keep, no_lane, lambda email: leased[bucket[email]]


def _mark_throttled(session: Session, send_ids: list[int]) -> None:
    """For the progress view: rows held back by the throttle (a deferral's reply is not overwritten)."""
    session.execute(
        sa.update(Send)
        .where(Send.id.in_(send_ids), Send.state == "queued", Send.error == "")
        .values(error=THROTTLED)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _finish_chunk(work: _Work, prepared: list[Prepared], results: list[DeliveryResult]) -> None:
    attempts = {p.row["id"]: p.row["attempts"] for p in prepared}
    before = work.outcome.retry_later
    written = {p.row["id"]: p.written for p in prepared}
    record(work.session, results, attempts, MAX_ATTEMPTS, work.outcome, written=written)
    # Only deferrals (421/450/451/452) are retried within the batch, after their group's pause;
    # connection trouble and other temporary replies wait for rq's retry schedule.
    if work.outcome.retry_later > before and any(
        not r.accepted and not r.permanent and smtp_code(r.error) not in DEFERRAL_CODES for r in results
    ):
        work.outcome.retry_later_unthrottled = True
    work.journal.drop_first(len(results))
    renew(work.lock)
    recipients = {p.row["id"]: p.message.recipient for p in prepared}
    act_on_refusals(work.rt, work.session, results, recipients, attempts, MAX_ATTEMPTS, work.throttle)


def _fail_refused(work: _Work, refused: list[Refused]) -> None:
    """Rows that could not be made into a message fail alone, for good, with their reason; they
    are neither delivered nor counted as bounces (the address is not suppressed)."""
    results = [DeliveryResult(r.row["id"], False, True, r.error) for r in refused]
    attempts = {r.row["id"]: r.row["attempts"] for r in refused}
    written = {r.row["id"]: r.written for r in refused}
    record(work.session, results, attempts, MAX_ATTEMPTS, work.outcome, written=written)


def _chunks(rows: Sequence[Pending], size: int) -> Iterator[Sequence[Pending]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _apply_journal(session: Session, journal: SendJournal) -> int:
    """Rows left `sending` by a dead worker: those the server accepted become `sent`."""
    entries = journal.entries()
    if not entries:
        return 0
    results = [DeliveryResult(e.send_id, e.accepted, e.permanent, e.error) for e in entries]
    attempts = dict(
        session.execute(
            sa.select(Send.id, Send.attempts).where(Send.id.in_([e.send_id for e in entries]))
        ).all()
    )
    record(session, results, attempts, MAX_ATTEMPTS, BatchOutcome(), only_state="sending")
    journal.clear()
    return sum(1 for e in entries if e.accepted)


def _skip_unsendable(session: Session, wave_id: int, batch: int) -> int:
    """Contacts who unsubscribed, bounced or were suppressed after planning are skipped, not sent."""
    suppressed = sa.select(Suppression.email).where(Suppression.email == Contact.email).exists()
    unsendable = (
        sa.select(Contact.id)
        .where(
            Contact.id == Send.contact_id,
            sa.or_(Contact.status != "active", Contact.consent.is_(False), suppressed),
        )
        .exists()
    )
    result = session.execute(
        sa.update(Send)
        .where(Send.wave_id == wave_id, Send.batch == batch, Send.state == "queued", unsendable)
        .values(state="skipped", error="unsubscribed, bounced or suppressed before sending")
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _pending(session: Session, wave_id: int, batch: int) -> list[Pending]:
    query = (
        sa.select(
            Send.id,
            Contact.id,
            Contact.email,
            Contact.name,
            Contact.country,
            Contact.timezone,
            Contact.attributes,
            Send.attempts,
            Send.rollout_id,
        )
        .join(Contact, Contact.id == Send.contact_id)
        .where(
            Send.wave_id == wave_id,
            Send.batch == batch,
            Send.state.in_(("queued", "sending")),
            sa.or_(Send.not_before.is_(None), Send.not_before <= utcnow()),  # local-time delivery
        )
        .order_by(Send.id)
    )
    # columns only, no entity: on the session's connection, without the ORM's row loading (every
    # write before this one is committed, so there is nothing to flush first)
    return [Pending._make(row) for row in session.connection().execute(query)]
