"""Send one batch: assign arms in bulk, look up recommendations, render with the template compiled
once, build MIME with signed links, deliver over one SMTP connection, and move each ledger row
`queued -> sending -> sent | failed` (see campaigns.sending.journal for why this never sends twice).

Fail closed: any error while choosing or rendering AI content sends the control content (logged,
`content = "fallback"`). The kill switch is re-read from the database before every chunk.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from redis.lock import Lock
from sqlalchemy.orm import Session

from campaigns import metrics
from campaigns.arms import assign_batch
from campaigns.campaigns import campaign_links, register_links
from campaigns.render import CompiledTemplate, contact_context, render
from campaigns.runtime import Runtime
from campaigns.sending.batch_lock import release, renew, take_batch_lock
from campaigns.sending.delivery import DeliveryResult, SmtpConfig, SmtpTransport
from campaigns.sending.journal import JournalWriter, SendJournal
from campaigns.sending.message import MessageBuilder, OutgoingMessage, links_in
from campaigns.sending.planner import finish_wave_if_done
from campaigns.templates import compiled
from campaigns.tokens import TokenSigner
from models import Campaign, Contact, Send, ShadowRender, Suppression, Template, utcnow

log = logging.getLogger(__name__)
CHUNK = 250  # the kill switch is re-read before every chunk
MAX_ATTEMPTS = 5


class TemporaryFailure(RuntimeError):
    """Some messages failed for now (4xx, connection trouble); rq retries the batch later."""


@dataclass(frozen=True)
class Pending:
    send_id: int
    contact_id: int
    email: str
    name: str
    country: str
    timezone: str
    attributes: dict[str, Any]
    attempts: int


@dataclass
class BatchOutcome:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retry_later: int = 0
    recovered_from_journal: int = 0
    busy: bool = False
    wave_finished: bool = False
    arms: dict[str, int] = field(default_factory=dict)


@dataclass
class _Prepared:
    message: OutgoingMessage
    row: dict[str, Any]  # ledger values written with state `sending`


TransportFactory = Callable[[str], SmtpTransport]


def default_transport(url: str) -> SmtpTransport:
    return SmtpTransport(SmtpConfig.from_url(url))


def send_batch(
    rt: Runtime,
    campaign_id: int,
    wave_id: int,
    batch: int,
    transport_factory: TransportFactory = default_transport,
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
        pending = _pending(session, wave_id, batch)
        if pending:
            builder = MessageBuilder(
                signer=TokenSigner(rt.settings.secret_key),
                base_url=rt.settings.base_url,
                campaign_id=campaign.id,
                from_email=campaign.from_email,
                from_name=campaign.from_name,
                link_ids=campaign_links(session, campaign.id),
                message_id_key=rt.settings.secret_key,
            )
            tmpl = compiled(template)
            with (
                transport_factory(rt.settings.smtp_url) as smtp,
                ThreadPoolExecutor(1, "smtp") as sender,
                _short_gil_switches(),
            ):
                writer = journal.writer()
                try:
                    # Delivery of chunk k (a thread, mostly waiting on the network) overlaps the
                    # preparation of chunk k+1 (this thread, mostly CPU).
                    in_flight: tuple[list[_Prepared], Future[list[DeliveryResult]]] | None = None
                    for chunk in _chunks(pending, CHUNK):
                        prepared = _prepare(session, campaign, tmpl, builder, chunk)
                        if in_flight is not None:
                            _finish(session, journal, lock, *in_flight, outcome)
                        in_flight = (prepared, sender.submit(_deliver, smtp, writer, prepared))
                    if in_flight is not None:
                        _finish(session, journal, lock, *in_flight, outcome)
                finally:
                    writer.close()
        outcome.wave_finished = finish_wave_if_done(session, wave_id)
        session.commit()
    finally:
        session.close()
        release(lock)
    if outcome.retry_later:
        raise TemporaryFailure(f"{outcome.retry_later} messages of batch {batch} failed for now; retrying")
    return outcome


@contextmanager
def _short_gil_switches(seconds: float = 0.0002) -> Iterator[None]:
    """The delivery thread wakes on every SMTP reply; with Python's default 5 ms switch interval it
    would wait that long for the interpreter while this thread renders. Shorter slices keep it fed."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _deliver(smtp: SmtpTransport, writer: JournalWriter, prepared: list[_Prepared]) -> list[DeliveryResult]:
    results = []
    for item in prepared:
        writer.ready_for_next()  # bounds what a Redis failure can make us send twice
        result = smtp.send(item.message)
        writer.append(result)
        results.append(result)
    writer.flush()
    return results


def _finish(
    session: Session,
    journal: SendJournal,
    lock: Lock,
    prepared: list[_Prepared],
    delivery: Future[list[DeliveryResult]],
    outcome: BatchOutcome,
) -> None:
    results = delivery.result()
    _record(session, results, {p.row["id"]: p.row["attempts"] for p in prepared}, outcome)
    journal.drop_first(len(results))
    renew(lock)


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
    _record(session, results, attempts, BatchOutcome(), only_state="sending")
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
    rows = session.execute(
        sa.select(
            Send.id,
            Contact.id,
            Contact.email,
            Contact.name,
            Contact.country,
            Contact.timezone,
            Contact.attributes,
            Send.attempts,
        )
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.wave_id == wave_id, Send.batch == batch, Send.state.in_(("queued", "sending")))
        .order_by(Send.id)
    ).all()
    return [Pending(*row) for row in rows]


@dataclass
class _Rendered:
    pending: Pending
    arm: str
    content: str  # ai | control | fallback
    subject: str
    html: str
    render_ms: float
    item_by_url: dict[str, int]


def _prepare(
    session: Session,
    campaign: Campaign,
    tmpl: CompiledTemplate,
    builder: MessageBuilder,
    chunk: Sequence[Pending],
) -> list[_Prepared]:
    """Assign, render and build one chunk, then mark it `sending` (committed) before any delivery."""
    ids = np.fromiter((p.contact_id for p in chunk), dtype=np.int64, count=len(chunk))
    assignment = assign_batch(
        session, campaign.rollout_id, ids, [p.attributes for p in chunk], [p.country for p in chunk]
    )
    wants_ai = [
        int(c)
        for c, arm, shadow in zip(ids, assignment.arms, assignment.shadow, strict=True)
        if arm == "treatment" or shadow
    ]
    recommendations = _recommendations(
        session, assignment.model_version_id, wants_ai, campaign.recommendation_rules
    )
    rendered: list[_Rendered] = []
    shadows: list[dict[str, Any]] = []
    for p, arm, shadow in zip(chunk, assignment.arms, assignment.shadow, strict=True):
        extra = {
            "unsubscribe_url": builder.unsubscribe_url(p.send_id),
            "campaign": {"id": campaign.id, "name": campaign.name},
        }
        context = contact_context(p.contact_id, p.email, p.name, p.country, p.timezone, p.attributes)
        recs = recommendations.get(p.contact_id, [])
        started = time.perf_counter()
        ai, ai_error = None, ""
        if (arm == "treatment" or shadow) and not recs:
            ai_error = "no recommendations for this contact"
        elif arm == "treatment" or shadow:
            try:
                ai = render(tmpl, ai=True, contact=context, recommendations=recs, extra=extra)
            except Exception as exc:  # fail closed: control content, logged
                log.warning("AI content failed for send %s, sending control: %s", p.send_id, exc)
                ai_error = f"{type(exc).__name__}: {exc}"
        if shadow:  # computed and stored, never sent
            shadows.append(
                {
                    "send_id": p.send_id,
                    "rollout_id": campaign.rollout_id,
                    "item_ids": [r["item_id"] for r in recs],
                    "content_sha256": hashlib.sha256(ai.html.encode()).hexdigest() if ai else "",
                    "latency_ms": (time.perf_counter() - started) * 1000,
                    "error": ai_error,
                }
            )
            ai = None
        content = "ai" if ai is not None else ("fallback" if arm == "treatment" else "control")
        out = ai or render(tmpl, ai=False, contact=context, recommendations=[], extra=extra)
        items = {r["url"]: r["item_id"] for r in recs} if ai is not None else {}
        rendered.append(
            _Rendered(
                p, str(arm), content, out.subject, out.html, (time.perf_counter() - started) * 1000, items
            )
        )
    urls: set[str] = set()
    for r in rendered:
        urls |= links_in(r.html)
    builder.link_ids = register_links(session, campaign.id, urls, builder.link_ids)
    buckets = dict(zip(ids.tolist(), assignment.buckets.tolist(), strict=True))
    forced = dict(zip(ids.tolist(), assignment.forced.tolist(), strict=True))
    labels = dict(zip(ids.tolist(), assignment.segments or [[] for _ in ids], strict=True))
    prepared = []
    for r in rendered:
        p = r.pending
        message = builder.build(
            send_id=p.send_id,
            contact_id=p.contact_id,
            email=p.email,
            name=p.name,
            subject=r.subject,
            html=r.html,
            item_by_url=r.item_by_url,
        )
        row = {
            "id": p.send_id,
            "state": "sending",
            "arm": r.arm,
            "content": r.content,
            "bucket": buckets[p.contact_id] if buckets[p.contact_id] >= 0 else None,
            "forced": forced[p.contact_id],
            "segments": labels[p.contact_id],
            "stage_index": assignment.stage_index,
            "model_version_id": assignment.model_version_id if r.content == "ai" else None,
            "message_id": message.message_id,
            "render_ms": r.render_ms,
            "attempts": p.attempts + 1,
        }
        prepared.append(_Prepared(message, row))
    session.execute(sa.update(Send), [p.row for p in prepared])
    if shadows:
        session.execute(sa.insert(ShadowRender), shadows)
    session.commit()
    return prepared


def _recommendations(
    session: Session, model_version_id: int | None, contact_ids: list[int], rules: dict[str, Any] | None
) -> dict[int, list[dict[str, Any]]]:
    if not contact_ids:
        return {}
    from campaigns.recommender.rules import CampaignRules
    from campaigns.recommender.service import lookup

    try:
        found = lookup(session, model_version_id, contact_ids, rules=CampaignRules.from_mapping(rules))
    except Exception:  # fail closed: no recommendations -> the AI block fails -> control content
        log.exception("recommendation lookup failed; these contacts get control content")
        return {}
    return {cid: [r.__dict__ for r in recs] for cid, recs in found.items()}


def _record(
    session: Session,
    results: Sequence[DeliveryResult],
    attempts: dict[int, int],
    outcome: BatchOutcome,
    only_state: str | None = None,
) -> None:
    now = utcnow()
    updates = []
    for r in results:
        if r.accepted:
            updates.append({"id": r.send_id, "state": "sent", "sent_at": now, "error": ""})
            outcome.sent += 1
        elif r.permanent or attempts.get(r.send_id, 0) >= MAX_ATTEMPTS:
            updates.append({"id": r.send_id, "state": "failed", "error": r.error})
            outcome.failed += 1
        else:
            updates.append({"id": r.send_id, "state": "queued", "error": r.error})
            outcome.retry_later += 1
    if only_state:
        ids = [u["id"] for u in updates]
        current = set(session.scalars(sa.select(Send.id).where(Send.id.in_(ids), Send.state == only_state)))
        updates = [u for u in updates if u["id"] in current]
    if updates:
        session.execute(sa.update(Send), updates)
        finished = [u["id"] for u in updates if u["state"] in ("sent", "failed")]
        if finished:
            sends = list(session.scalars(sa.select(Send).where(Send.id.in_(finished))))
            for s in sends:
                outcome.arms[s.arm] = outcome.arms.get(s.arm, 0) + 1
            metrics.record_sends(session, sends, segments={s.id: s.segments for s in sends if s.segments})
    session.commit()
