"""A campaign's `MessageBuilder`: the workspace's keys and base URL, the campaign's sender and its
stored links, as every path that renders a campaign's message needs them (the send path, seed test
sends, the web version). What differs between those paths is passed in: the Message-ID key, and
DKIM, the VERP return path and the "view in browser" link, which only real sends carry.

Kept apart from `message` (pure: no database) and from `webview` (which uses it)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from campaigns.campaign_records import campaign_links
from campaigns.events.tokens import TokenSigner
from campaigns.runtime import Settings
from campaigns.sending.dkim import DkimSigner
from campaigns.sending.message import MessageBuilder
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
    )
