"""Test sends: a campaign's email to a seed list before a wave, once per arm (control and AI), so a
marketer sees both versions in real inboxes.

Test messages are marked (`[Test: AI]` in the subject, an `X-Mailramp-Test` header) and never touch
the ledger: no send row, so no result, metric or decision ever counts them, and their tracking links
name no send (events from them are dropped by ingest as orphans).

The suppression list holds here as everywhere: a suppressed, bounced, complained, unsubscribed or
erased address gets no test message (its result says why), unless the caller passes
`include_suppressed`, an explicit override recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from campaigns.contacts.records import normalize_email
from campaigns.content.render import contact_context, render
from campaigns.content.templates import compiled
from campaigns.errors import InputError, NotFound
from campaigns.runtime import Runtime
from campaigns.sending.builders import campaign_builder
from campaigns.sending.delivery import SmtpConfig, SmtpTransport
from campaigns.sending.dkim import signer_for
from models import Campaign, Contact, Rollout, Suppression, Template

MAX_SEEDS = 50
TEST_SEND_ID = 0  # tracking tokens of test messages name no send
ARMS = (("control", False), ("AI", True))


@dataclass(frozen=True)
class SeedResult:
    email: str
    arm: str  # control | AI (both: not sent, see error)
    accepted: bool
    error: str = ""
    note: str = ""


def send_tests(
    rt: Runtime,
    campaign_id: int,
    emails: Sequence[str],
    transport_factory: Callable[[str], SmtpTransport] = lambda url: SmtpTransport(SmtpConfig.from_url(url)),
    *,
    include_suppressed: bool = False,
) -> list[SeedResult]:
    if not emails:
        raise InputError("give at least one seed address", where="emails")
    if len(emails) > MAX_SEEDS:
        raise InputError(f"at most {MAX_SEEDS} seed addresses", where="emails")
    seeds = []
    for i, raw in enumerate(emails):
        try:
            seeds.append(normalize_email(str(raw)))
        except InputError as exc:
            raise InputError(exc.message, where=f"emails[{i}]") from exc
    with rt.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        template = session.get(Template, campaign.template_id)
        if template is None:
            raise NotFound(f"campaign {campaign_id} has no template")
        rollout = session.get(Rollout, campaign.rollout_id) if campaign.rollout_id else None
        contacts = {c.email: c for c in session.scalars(sa.select(Contact).where(Contact.email.in_(seeds)))}
        blocked = unsendable_seeds(session, seeds, contacts)
        if include_suppressed and blocked:
            from campaigns.privacy import audit

            audit.record(
                session,
                "test_send_override",
                "campaign",
                campaign_id,
                summary=f"test send to {len(blocked)} suppressed seed addresses, by explicit override",
                after={"reasons": sorted(set(blocked.values()))},
            )
            session.commit()
            blocked = {}
        builder = campaign_builder(
            session,
            rt.settings,
            campaign,
            message_id_key=rt.settings.secret_key + ":test",
            dkim=signer_for(session, campaign.from_email),
        )
        recs = _recommendations(session, rollout, campaign, [c.id for c in contacts.values()])
        tmpl = compiled(template)
        messages = []
        skipped: list[SeedResult] = []
        for n, email in enumerate(seeds):
            if email in blocked:
                skipped.append(SeedResult(email, "both", False, f"not sent: {blocked[email]}"))
                continue
            contact = contacts.get(email)
            context = (
                contact_context(
                    contact.id, email, contact.name, contact.country, contact.timezone, contact.attributes
                )
                if contact
                else contact_context(0, email, "", "", "UTC", {})
            )
            mine = recs.get(contact.id if contact else 0, [])
            for k, (arm, ai) in enumerate(ARMS):
                extra = {
                    "unsubscribe_url": builder.unsubscribe_url(TEST_SEND_ID),
                    "campaign": {"id": campaign.id, "name": campaign.name},
                }
                note = ""
                if ai and not mine:
                    note = (
                        "no recommendations: the AI version shows the control content, as a real send would"
                    )
                out = render(
                    tmpl,
                    ai=ai and bool(mine),
                    contact=context,
                    recommendations=mine if ai else [],
                    extra=extra,
                )
                message = builder.build(
                    send_id=TEST_SEND_ID,
                    contact_id=-(2 * n + k + 1),
                    email=email,
                    name=contact.name if contact else "",
                    subject=f"[Test: {arm}] {out.subject}",
                    html=out.html,
                    item_by_url={r["url"]: r["item_id"] for r in mine} if ai else {},
                    extra_headers=(("X-Mailramp-Test", arm.lower()),),
                )
                messages.append((email, arm, note, message))
    results = list(skipped)
    if not messages:
        return results
    with transport_factory(rt.settings.smtp_url) as smtp:
        for email, arm, note, message in messages:
            result = smtp.send(message)
            results.append(SeedResult(email, arm, result.accepted, result.error, note))
    return results


def unsendable_seeds(
    session: sa.orm.Session, seeds: Sequence[str], contacts: dict[str, Contact]
) -> dict[str, str]:
    """Seed address -> why it must not be mailed: on the suppression list (in clear, or hashed after
    an erasure), or a contact that bounced, complained or unsubscribed."""
    from campaigns.privacy.erasure import address_hash

    hashed = {address_hash(e): e for e in seeds}
    rows = session.execute(
        sa.select(Suppression.email, Suppression.reason).where(Suppression.email.in_([*seeds, *hashed]))
    ).all()
    out = {hashed.get(email, email): f"suppressed ({reason})" for email, reason in rows}
    for email, contact in contacts.items():
        if email not in out and contact.status != "active":
            out[email] = f"the contact is {contact.status}"
    return out


def _recommendations(
    session: sa.orm.Session, rollout: Rollout | None, campaign: Campaign, contact_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """The seeds' own recommendations when they are contacts; best-sellers otherwise (id 0)."""
    from campaigns.recommender.rules import CampaignRules
    from campaigns.recommender.service import lookup

    found = lookup(
        session,
        rollout.model_version_id if rollout else None,
        [*contact_ids, 0],
        rules=CampaignRules.from_mapping(campaign.recommendation_rules),
    )
    return {cid: [r.__dict__ for r in recs] for cid, recs in found.items()}
