"""The platform's own inbound SMTP server for the VERP return path: bounce messages and feedback-loop
reports come back here, are read, and become bounce and complaint events.

- Delivery status notifications (RFC 3464, multipart/report; report-type=delivery-status): every
  per-recipient block with Action `failed` is a bounce, hard for a 5.x.x Status, soft for 4.x.x.
  `delayed` is only a warning and changes nothing.
- Abuse reports (RFC 5965 ARF, multipart/report; report-type=feedback-report) with Feedback-Type
  `abuse` (or `fraud`) are complaints.

A report is acted on only when it identifies a real send: the VERP recipient
(`bounce+<send id>.<signature>@<bounce domain>`) or the VERP Return-Path quoted in the report, with a
valid signature; else the quoted Message-ID of a message this installation sent to the address the
report names. Anything else (a DSN mailed to any address at the bounce domain, quoting nothing of
ours) is logged and ignored: anyone can send mail, and must not be able to suppress an address.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from campaigns.runtime import Runtime
from campaigns.sending import bounces, unsubscribe_mail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundReport:
    kind: str  # hard | soft | complaint
    source: str  # dsn | arf
    email: str
    detail: str
    message_id: str = ""  # the original message's, when the report quotes it
    return_path: str = ""


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = _blocks(part)
            return inner[0] if inner else None
        if ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            return message_from_bytes(payload if isinstance(payload, bytes) else b"", policy=policy.compat32)
    return None


def _address(value: str | None) -> str:
    """`rfc822; someone@example.com` -> someone@example.com."""
    text = (value or "").strip()
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").lower()


def read_report(raw: bytes) -> list[InboundReport]:
    message = message_from_bytes(raw, policy=policy.compat32)
    if message.get_content_type() != "multipart/report":
        return []
    report_type = (message.get_param("report-type") or "").lower()  # type: ignore[union-attr]
    original = _original_headers(message)
    message_id = str(original.get("Message-ID", "")).strip() if original is not None else ""
    return_path = _address(original.get("Return-Path")) if original is not None else ""
    out: list[InboundReport] = []
    if report_type == "delivery-status":
        for part in message.walk():
            if part.get_content_type() != "message/delivery-status":
                continue
            for block in _blocks(part)[1:]:  # the first block is per-message, the rest per-recipient
                action = str(block.get("Action", "")).strip().lower()
                status = str(block.get("Status", "")).strip()
                if action != "failed":
                    continue
                recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
                kind = bounces.HARD if status.startswith("5") else bounces.SOFT
                detail = " ".join(str(x).strip() for x in (status, block.get("Diagnostic-Code", "")) if x)
                out.append(InboundReport(kind, "dsn", recipient, detail, message_id, return_path))
    elif report_type == "feedback-report":
        for part in message.walk():
            if part.get_content_type() != "message/feedback-report":
                continue
            fields = _blocks(part)
            if not fields:
                continue
            feedback_type = str(fields[0].get("Feedback-Type", "")).strip().lower()
            if feedback_type not in ("abuse", "fraud"):
                continue
            recipient = _address(fields[0].get("Original-Rcpt-To"))
            if not recipient and original is not None:
                recipient = _address(str(original.get("To", "")).rpartition("<")[2])
            detail = f"ARF {feedback_type} from {str(fields[0].get('User-Agent', '')).strip() or 'unknown'}"
            out.append(InboundReport(bounces.COMPLAINT, "arf", recipient, detail, message_id, return_path))
    return out


class BounceHandler:
    """aiosmtpd handler: accepts mail for the bounce domain only, reads it, pushes events."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        domain = self.rt.settings.bounce_domain
        if not domain or address.rpartition("@")[2].lower() != domain.lower():
            return "550 5.1.1 not a bounce address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        if unsubscribe_mail.act_on(self.rt, envelope.rcpt_tos):  # List-Unsubscribe's mailto:
            return "250 OK"
        try:
            reports = read_report(raw)
            verp = [bounces.parse_verp(self.rt.settings.secret_key, r) for r in envelope.rcpt_tos]
            pushed = record(self.rt, reports, next((v for v in verp if v is not None), None))
        except Exception:  # answer 451 so the sender retries; never lose a report to a bug here
            log.exception("could not read an inbound report")
            return "451 4.3.0 could not process the report now; try again later"
        log.info("inbound report: %d events from %d reports", pushed, len(reports))
        return "250 OK"


def record(rt: Runtime, reports: Sequence[InboundReport], verp_send_id: int | None) -> int:
    """Find each report's send and push its event; returns the number of events pushed."""
    pushed = 0
    with rt.session() as session:
        for r in reports:
            send_id = verp_send_id
            if send_id is None and r.return_path:
                send_id = bounces.parse_verp(rt.settings.secret_key, r.return_path)
            send_id = bounces.resolve_send(
                session, send_id=send_id, message_id=r.message_id, email=r.email, latest_to_address=False
            )
            if send_id is None:
                log.warning(
                    "ignored an inbound %s report for %r: it names no send of ours (no valid VERP "
                    "address, no Message-ID of a message sent to that address)",
                    r.kind,
                    r.email[:254],
                )
                continue
            bounces.push_report(rt.redis, send_id, r.kind, r.source, r.detail)
            pushed += 1
    return pushed


def start_inbound(rt: Runtime, host: str = "0.0.0.0", port: int = 2525) -> Controller:
    controller = Controller(BounceHandler(rt), hostname=host, port=port, data_size_limit=10_000_000)
    controller.start()
    return controller
