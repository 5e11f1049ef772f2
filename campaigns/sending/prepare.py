"""Prepare one chunk of a batch for delivery: assign arms, look up recommendations, render (AI
content where the arm says so, control otherwise, fail closed), build each MIME message with its
signed links, and mark the chunk's ledger rows `sending` (committed) before anything is delivered.

One bad record fails alone: a contact whose address cannot be sent to (see `address_refusal`), or
whose message cannot be rendered or built, comes back in `Chunk.refused` with its reason, and the
rest of the chunk goes on. The caller records those rows `failed` with that reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.campaign_records import register_links
from campaigns.contacts.addresses import normalize_email
from campaigns.content.render import CompiledTemplate, contact_context, render
from campaigns.errors import InputError
from campaigns.recommender.service import LookupMemo
from campaigns.sending.arms import assign_batch
from campaigns.sending.ledger import Written, update_by_id
from campaigns.sending.message import MessageBuilder, OutgoingMessage, links_in
from models import Campaign, ShadowRender

log = logging.getLogger(__name__)


class Pending(NamedTuple):
    """A ledger row due to be sent, with its contact (a tuple: a thousand made per batch)."""

    send_id: int
    contact_id: int
    email: str
    name: str
    country: str
    timezone: str
    attributes: dict[str, Any]
    attempts: int
    rollout_id: int | None = None  # the ledger row's, for the aggregates once it is sent


@dataclass
class Prepared:
    message: OutgoingMessage
    row: dict[str, Any]  # ledger values written with state `sending`
    written: Written


@dataclass
class Refused:
    """A row that cannot be sent: marked `sending` with its arm like the others, then failed with
    `error` (never retried: the same record fails the same way)."""

    row: dict[str, Any]
    written: Written
    error: str


@dataclass
class Chunk:
    prepared: list[Prepared]
    refused: list[Refused]


NOT_SENT = "not sent: "  # every refusal's reason starts so (the progress view groups on it)


def address_refusal(email: str) -> str | None:
    """Why this stored address cannot be sent to, or None. Addresses are checked at the door
    (campaigns.contacts.addresses.normalize_email); rows stored before that check, or written around
    it, are refused here one by one. mailramp does not send with SMTPUTF8, so an address must be
    ASCII (docs/contacts.md)."""
    if not email.isascii():
        return f"{NOT_SENT}address refused: {email!r} has non-ASCII characters (SMTPUTF8 is not used)"
    try:
        normalize_email(email)
    except InputError as exc:
        return f"{NOT_SENT}address refused: {exc.message}"
    return None


@dataclass(slots=True)
class _Rendered:
    pending: Pending
    arm: str
    content: str  # ai | control | fallback
    subject: str
    html: str
    render_ms: float
    item_by_url: dict[str, int]
    unsubscribe_url: str
    web_version_url: str | None
    refusal: str = ""


def prepare_chunk(
    session: Session,
    campaign: Campaign,
    tmpl: CompiledTemplate,
    builder: MessageBuilder,
    chunk: Sequence[Pending],
    memo: LookupMemo,
) -> Chunk:
    """Assign, render and build one chunk, then mark it `sending` (committed) before any delivery.
    Rows that cannot be sent come back in `refused` (see the module's docstring)."""
    ids = np.fromiter((p.contact_id for p in chunk), dtype=np.int64, count=len(chunk))
    assignment = assign_batch(
        session, campaign.rollout_id, ids, [p.attributes for p in chunk], [p.country for p in chunk]
    )
    wants_ai = [
        int(c)
        for c, arm, shadow in zip(ids, assignment.arms, assignment.shadow, strict=True)
        if arm == "treatment" or shadow
    ]
    recommendations = recommendations_for(
        session,
        assignment.model_version_id,
        wants_ai,
        campaign.recommendation_rules,
        memo,
        {p.contact_id: p.country or "" for p in chunk},
    )
    rendered: list[_Rendered] = []
    shadows: list[dict[str, Any]] = []
    # per chunk, not per contact: the campaign as templates see it (read-only in the sandbox), the
    # builder's URL makers, the arms as Python values
    about = {"id": campaign.id, "name": campaign.name}
    unsubscribe_url, web_version = builder.unsubscribe_url, builder.web_version
    rollout_id = campaign.rollout_id
    clock = time.perf_counter
    for p, arm, shadow in zip(chunk, assignment.arms.tolist(), assignment.shadow.tolist(), strict=True):
        refusal = address_refusal(p.email)
        if refusal is not None:
            rendered.append(_Rendered(p, str(arm), "control", "", "", 0.0, {}, "", None, refusal))
            continue
        extra = {
            "unsubscribe_url": (unsubscribe := unsubscribe_url(p.send_id)),
            "web_version_url": (web := web_version(p.send_id) if web_version else None),
            "campaign": about,
        }
        context = contact_context(p.contact_id, p.email, p.name, p.country, p.timezone, p.attributes)
        recs = recommendations.get(p.contact_id, [])
        started = clock()
        ai, ai_error = None, ""
        wants = arm == "treatment" or shadow
        if wants and not recs:
            ai_error = "no recommendations for this contact"
        elif wants:
            try:
                ai = render(tmpl, ai=True, contact=context, recommendations=recs, extra=extra)
            except Exception as exc:  # fail closed: control content, logged
                log.warning("AI content failed for send %s, sending control: %s", p.send_id, exc)
                ai_error = f"{type(exc).__name__}: {exc}"
        if shadow:  # computed and stored, never sent
            shadows.append(
                {
                    "send_id": p.send_id,
                    "rollout_id": rollout_id,
                    "item_ids": [r["item_id"] for r in recs],
                    "content_sha256": hashlib.sha256(ai.html.encode()).hexdigest() if ai else "",
                    "latency_ms": (clock() - started) * 1000,
                    "error": ai_error,
                }
            )
            ai = None
        content = "ai" if ai is not None else ("fallback" if arm == "treatment" else "control")
        try:
            out = ai or render(tmpl, ai=False, contact=context, recommendations=[], extra=extra)
        except Exception as exc:  # this contact's message cannot be made: it fails alone
            log.warning("send %s cannot be rendered: %s", p.send_id, exc)
            refusal = f"{NOT_SENT}the template fails for this contact: {type(exc).__name__}: {exc}"
            rendered.append(_Rendered(p, str(arm), content, "", "", 0.0, {}, "", None, refusal[:2000]))
            continue
        items = {r["url"]: r["item_id"] for r in recs} if ai is not None else {}
        rendered.append(
            _Rendered(
                p, str(arm), content, out.subject, out.html, (clock() - started) * 1000, items, unsubscribe, web
            )
        )  # fmt: skip
    urls: set[str] = set()
    for r in rendered:
        if not r.refusal:
            urls |= links_in(r.html)
    urls = {u for u in urls if not builder.is_tracking_url(u)}  # per-send links: never click-tracked
    builder.link_ids = register_links(session, campaign.id, urls, builder.link_ids)
    buckets = dict(zip(ids.tolist(), assignment.buckets.tolist(), strict=True))
    forced = dict(zip(ids.tolist(), assignment.forced.tolist(), strict=True))
    labels = dict(zip(ids.tolist(), assignment.segments or [[] for _ in ids], strict=True))
    prepared: list[Prepared] = []
    refused: list[Refused] = []
    build, campaign_id = builder.build, campaign.id
    stage_index, model_version_id = assignment.stage_index, assignment.model_version_id
    for r in rendered:
        p = r.pending
        message, refusal = None, r.refusal
        if not refusal:
            try:
                message = build(
                    send_id=p.send_id,
                    contact_id=p.contact_id,
                    email=p.email,
                    name=p.name,
                    subject=r.subject,
                    html=r.html,
                    item_by_url=r.item_by_url,
                    unsubscribe_url=r.unsubscribe_url,
                    web_version_url=r.web_version_url,
                )
            except Exception as exc:  # e.g. a header that cannot be encoded: this message fails alone
                log.warning("send %s cannot be built: %s", p.send_id, exc)
                refusal = f"{NOT_SENT}the message cannot be built: {type(exc).__name__}: {exc}"[:2000]
        row = {
            "id": p.send_id,
            "state": "sending",
            "error": "",  # no longer waiting: a throttle's or a deferral's note no longer applies
            "arm": r.arm,
            "content": r.content,
            "bucket": buckets[p.contact_id] if buckets[p.contact_id] >= 0 else None,
            "forced": forced[p.contact_id],
            "segments": labels[p.contact_id],
            "stage_index": stage_index,
            "model_version_id": model_version_id if r.content == "ai" else None,
            "message_id": message.message_id if message is not None else "",
            "render_ms": r.render_ms,
            "attempts": p.attempts + 1,
        }
        written = Written(
            campaign_id, p.rollout_id, stage_index, r.arm, row["forced"], r.render_ms, row["segments"]
        )
        if message is None:
            refused.append(Refused(row, written, refusal))
        else:
            prepared.append(Prepared(message, row, written))
    update_by_id(session, [p.row for p in prepared] + [r.row for r in refused])
    if shadows:
        session.execute(sa.insert(ShadowRender), shadows)
    session.commit()
    return Chunk(prepared, refused)


def recommendations_for(
    session: Session,
    model_version_id: int | None,
    contact_ids: list[int],
    rules: dict[str, Any] | None,
    memo: LookupMemo,
    countries: dict[int, str],
) -> dict[int, list[dict[str, Any]]]:
    if not contact_ids:
        return {}
    from campaigns.recommender.rules import CampaignRules
    from campaigns.recommender.service import lookup

    try:
        found = lookup(
            session,
            model_version_id,
            contact_ids,
            rules=CampaignRules.from_mapping(rules),
            memo=memo,
            countries={c: countries[c] for c in contact_ids},
        )
    except Exception:  # fail closed: no recommendations -> the AI block fails -> control content
        log.exception("recommendation lookup failed; these contacts get control content")
        return {}
    return {cid: [r.__dict__ for r in recs] for cid, recs in found.items()}
