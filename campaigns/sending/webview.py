"""The web version of a sent email ("view in browser"): a signed link in every message, rendered on
request from the send's own arm and content, with its links tracked as clicks and no open pixel,
so viewing it in a browser never counts as an open.

AI content is looked up again from the send's model version, as the send path does; a contact's
recommendations can have been refreshed since, so the web version shows the current ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, Signer
from sqlalchemy.orm import Session

from campaigns.content.render import contact_context, render
from campaigns.content.templates import compiled
from campaigns.runtime import Settings
from campaigns.sending.builders import campaign_builder
from models import Campaign, Contact, Send, Template

log = logging.getLogger(__name__)
PATH = "/t/w/"


def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="mailramp.webview", digest_method=hashlib.sha256, sep="~")


def url_maker(settings: Settings) -> Callable[[int], str]:
    """Signs exactly as `_signer(...).sign` does, with the derived key computed once (the send path
    makes one per message)."""
    key, base = _signer(settings.secret_key).derive_key(), settings.base_url.rstrip("/")

    def url(send_id: int) -> str:
        value = str(send_id)
        digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
        return f"{base}{PATH}{value}~{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    return url


def verify(secret_key: str, token: str) -> int | None:
    try:
        value = _signer(secret_key).unsign(token.encode()).decode()
    except (BadSignature, UnicodeError):
        return None
    return int(value) if value.isdigit() else None


def render_web_version(session: Session, settings: Settings, send_id: int) -> str | None:
    send = session.get(Send, send_id)
    if send is None or send.state not in ("sending", "sent"):
        return None
    campaign = session.get(Campaign, send.campaign_id)
    contact = session.get(Contact, send.contact_id)
    template = session.get(Template, campaign.template_id) if campaign else None
    if campaign is None or contact is None or template is None:
        return None
    builder = campaign_builder(session, settings, campaign)
    context = contact_context(
        contact.id, contact.email, contact.name, contact.country, contact.timezone, contact.attributes
    )
    extra = {
        "unsubscribe_url": builder.unsubscribe_url(send.id),
        "campaign": {"id": campaign.id, "name": campaign.name},
        "web_version_url": url_maker(settings)(send.id),
    }
    tmpl = compiled(template)
    recs: list[dict[str, Any]] = []
    if send.content == "ai":
        from campaigns.recommender.rules import CampaignRules
        from campaigns.recommender.service import lookup

        try:
            found = lookup(
                session,
                send.model_version_id,
                [contact.id],
                rules=CampaignRules.from_mapping(campaign.recommendation_rules),
            )
            recs = [r.__dict__ for r in found.get(contact.id, [])]
        except Exception:  # fail closed, as the send path does
            log.exception("web version of send %s: recommendations failed, showing control", send.id)
    out = None
    if recs:
        try:
            out = render(tmpl, ai=True, contact=context, recommendations=recs, extra=extra)
        except Exception:
            log.exception("web version of send %s: AI block failed, showing control", send.id)
    if out is None:
        recs = []
        out = render(tmpl, ai=False, contact=context, recommendations=[], extra=extra)
    return builder.track_links(out.html, send.id, {r["url"]: r["item_id"] for r in recs})
