"""Where a demo campaign's messages go: never out of the installation, whatever `SMTP_URL` says.

A demo campaign (campaigns.audience.demo_scope) is sent through this transport instead of SMTP: its
messages land in the local outbox folder (instance/outbox, the Maildir the UI's outbox reads), or
are dropped when the story replays (`DISCARD_URL`: thousands of simulated messages nobody reads).
It journals like any transport, so the ledger and the journal work as for a real send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from campaigns.sending.delivery import DeliveryResult
from campaigns.sending.message import OutgoingMessage
from campaigns.sending.outbox import store_message

DISCARD_URL = "demo-discard:"  # the story's replay: accepted and dropped
OUTBOX_PREFIX = "demo-outbox:"  # followed by the outbox folder


class DemoTransport:
    """Accepts every message at once and keeps it in the local outbox (or drops it)."""

    def __init__(self, url: str) -> None:
        self.outbox = None if url == DISCARD_URL else Path(url.removeprefix(OUTBOX_PREFIX))

    def __enter__(self) -> DemoTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        if self.outbox is not None:
            store_message(self.outbox, [message.recipient], message.data)
        return DeliveryResult(message.send_id, True)

    def send_journaled(
        self, message: OutgoingMessage, append: Callable[[DeliveryResult], None], commit: threading.Lock
    ) -> DeliveryResult:
        result = self.send(message)
        with commit:
            append(result)
        return result


def demo_url(smtp_url: str, instance_path: Path) -> str:
    """The transport URL of a demo campaign's batch: the story's discard, else the local outbox."""
    return DISCARD_URL if smtp_url == DISCARD_URL else f"{OUTBOX_PREFIX}{instance_path / 'outbox'}"
