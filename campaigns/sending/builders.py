"""A campaign's `MessageBuilder`: the workspace's keys and base URL, the campaign's sender and its
stored links, as every path that renders a campaign's message needs them (the send path, seed test
sends, the web version). What differs between those paths is passed in: the Message-ID key, and
DKIM, the VERP return path and the "view in browser" link, which only real sends carry.
`notice_builder` gives the same builder for transactional messages (a signup's confirmation), so
they too get DKIM, Date, a Message-ID at the sending domain and CRLF line ends.

Kept apart from `message` (pure: no database) and from `webview` (which uses it)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from campaigns.campaign_records import campaign_links
from campaigns.events.tokens import TokenSigner
from campaigns.runtime import Settings
from campaigns.sending.dkim import DkimSigner, signer_for
from campaigns.sending.message import MessageBuilder
from campaigns.sending.unsubscribe_mail import mailto_address
from models import Campaign


def campaign_builder(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    *,
    message_id_key: str | None = None,
    dkim: DkimSigner | None = None,
    return_path: Callable[[int], str] | None = None,
    web_version: Callable[[int], str] | None = None,
) -> MessageBuilder:
    """`message_id_key` defaults to the secret key (real sends and their web version share it, so a
    message's Message-ID is the same wherever it is rebuilt)."""
    return MessageBuilder(
        signer=TokenSigner(settings.secret_key),
        base_url=settings.base_url,
        campaign_id=campaign.id,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        link_ids=campaign_links(session, campaign.id),
        message_id_key=settings.secret_key if message_id_key is None else message_id_key,
        dkim=dkim,
        return_path=return_path,
        web_version=web_version,
        unsubscribe_mailto=unsubscribe_mailto(settings, campaign.from_email),
    )


def unsubscribe_mailto(settings: Settings, from_email: str) -> Callable[[int], str]:
    """The List-Unsubscribe mailto per send: at the bounce domain (whose inbound server acts on it),
    else at the From domain."""
    domain = settings.bounce_domain or from_email.rpartition("@")[2] or "mailramp.local"
    secret = settings.secret_key
    return lambda send_id: mailto_address(secret, send_id, domain)


def notice_builder(
    session: Session, settings: Settings, from_email: str, from_name: str = ""
) -> MessageBuilder:
    """The builder of transactional messages from `from_email`: signed with its domain's DKIM key."""
    return MessageBuilder(
        signer=TokenSigner(settings.secret_key),
        base_url=settings.base_url,
        campaign_id=0,
        from_email=from_email,
        from_name=from_name,
        link_ids={},
        message_id_key=settings.secret_key + ":notice",
        dkim=signer_for(session, from_email),
    )
