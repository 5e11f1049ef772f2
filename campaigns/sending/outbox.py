"""The local SMTP outbox used when SMTP_URL is unset: a real SMTP server (aiosmtpd) that keeps every
message it accepts in a Maildir under instance/outbox, and indexes it (`outbox_index`) for the UI."""

from __future__ import annotations

import logging
import mailbox
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from campaigns.sending import outbox_index
from campaigns.sending.outbox_index import OutboxEntry

__all__ = ["MaildirHandler", "OutboxEntry", "list_messages", "read_message", "start_outbox"]


class MaildirHandler:
    def __init__(self, path: Path) -> None:
        for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips these when `path` exists
            (path / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(str(path), create=True)
        self.path = path

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        store_message(self.path, envelope.rcpt_tos, content, self.maildir)
        return "250 Message accepted for delivery"


def quiet_smtp_server_log() -> None:
    """aiosmtpd logs every command line (`RCPT TO:<address>`) and every recipient at INFO on the
    `mail.log` logger: addresses do not belong in the log at INFO, so its INFO lines are dropped."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def store_message(
    path: Path, rcpt_tos: list[str], content: bytes, box: mailbox.Maildir | None = None
) -> None:
    """Keep one message as the outbox keeps what it accepts, and index it (the demo's sends come
    straight here)."""
    if box is None:
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(str(path), create=True)
    data = f"X-Outbox-Envelope-To: {', '.join(rcpt_tos)}\r\n".encode() + content
    key = box.add(data)
    outbox_index.add(path, key, data)


def start_outbox(path: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    quiet_smtp_server_log()
    controller = Controller(MaildirHandler(path), hostname=host, port=port, data_size_limit=20_000_000)
    controller.start()
    return controller


def list_messages(
    path: Path, limit: int = 100, offset: int = 0, query: str = ""
) -> tuple[int, list[OutboxEntry]]:
    """Newest first, from the index (never opens a message); `query` searches address and subject."""
    return outbox_index.search(path, query, limit=limit, offset=offset)


def read_message(path: Path, key: str) -> EmailMessage | None:
    box = mailbox.Maildir(str(path), create=False)
    try:
        raw = box.get_bytes(key)
    except KeyError:
        return None
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
