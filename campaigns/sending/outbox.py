"""The local SMTP outbox used when SMTP_URL is unset: a real SMTP server (aiosmtpd) that keeps every
message it accepts in a Maildir under instance/outbox, where the UI reads them."""

from __future__ import annotations

import logging
import mailbox
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MaildirHandler:
    def __init__(self, path: Path) -> None:
        for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips these when `path` exists
            (path / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(str(path), create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        store_message(self.maildir, envelope.rcpt_tos, content)
        return "250 Message accepted for delivery"


def quiet_smtp_server_log() -> None:
    """aiosmtpd logs every command line (`RCPT TO:<address>`) and every recipient at INFO on the
    `mail.log` logger: addresses do not belong in the log at INFO, so its INFO lines are dropped."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def store_message(box: mailbox.Maildir | Path, rcpt_tos: list[str], content: bytes) -> None:
    """Keep one message as the outbox keeps what it accepts (the demo's sends come straight here)."""
    if isinstance(box, Path):
        for sub in ("tmp", "new", "cur"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(str(box), create=True)
    header = f"X-Outbox-Envelope-To: {', '.join(rcpt_tos)}\r\n".encode()
    box.add(header + content)


def start_outbox(path: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    quiet_smtp_server_log()
    controller = Controller(MaildirHandler(path), hostname=host, port=port, data_size_limit=20_000_000)
    controller.start()
    return controller


@dataclass(frozen=True)
class OutboxEntry:
    key: str
    to: str
    subject: str
    sender: str
    received_at: datetime
    campaign_id: str


def list_messages(path: Path, limit: int = 100, offset: int = 0) -> tuple[int, list[OutboxEntry]]:
    """Newest first. Reads headers only."""
    if not path.exists():
        return 0, []
    box = mailbox.Maildir(str(path), create=False)
    timed = sorted(((box.get_message(k).get_date(), k) for k in box.iterkeys()), reverse=True)
    out = []
    for stamp, key in timed[offset : offset + limit]:
        msg = box.get_message(key)
        out.append(
            OutboxEntry(
                key=key,
                to=str(msg.get("To", "")),
                subject=_decoded(msg.get("Subject", "")),
                sender=str(msg.get("From", "")),
                received_at=datetime.fromtimestamp(stamp, UTC),
                campaign_id=str(msg.get("X-Mailramp-Campaign", "")),
            )
        )
    return len(timed), out


def read_message(path: Path, key: str) -> EmailMessage | None:
    box = mailbox.Maildir(str(path), create=False)
    try:
        raw = box.get_bytes(key)
    except KeyError:
        return None
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _decoded(value: str) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(value)))
