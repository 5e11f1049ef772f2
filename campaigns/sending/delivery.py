"""SMTP transports: one reused connection per batch, reconnecting when the server drops it.

`SMTP_URL` forms: smtp://host:port (plain, STARTTLS if ?starttls=1), smtps://host:465 (implicit
TLS), with optional user:password@. Results say, per message, whether it was accepted, refused for
good (5xx: never retried), or failed for now (4xx or connection trouble: retried later).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlparse

from campaigns.sending.message import OutgoingMessage
from campaigns.sending.throttle_policy import permanent


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parsed.scheme!r}")
        query = parse_qs(parsed.query)
        implicit = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            timeout=float(query.get("timeout", ["30"])[0]),
        )


@dataclass(frozen=True)
class DeliveryResult:
    send_id: int
    accepted: bool
    permanent: bool = False  # refused for good: do not retry
    error: str = ""


class SmtpTransport:
    """A context manager around one SMTP session, reused for every message of a batch."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        c = self.config
        if c.implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context())
        if c.username:
            smtp.login(c.username, c.password or "")
        if smtp.sock is not None:  # the final dot goes out alone (send_journaled): no Nagle delay
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._smtp = smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Deliver one message; a dropped connection is re-opened once and the message retried once."""
        for attempt in (1, 2):
            if self._smtp is None:
                try:
                    self.connect()
                except (smtplib.SMTPException, OSError) as exc:
                    return DeliveryResult(message.send_id, False, False, f"cannot connect: {exc}")
            assert self._smtp is not None
            try:
                self._smtp.sendmail(message.sender, [message.recipient], message.data)
                return DeliveryResult(message.send_id, True)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                return DeliveryResult(message.send_id, False, permanent(code), f"{code} {text!r}")
            except smtplib.SMTPResponseException as exc:
                self._reset()
                return DeliveryResult(
                    message.send_id, False, permanent(exc.smtp_code), f"{exc.smtp_code} {exc.smtp_error!r}"
                )
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._smtp = None
                if attempt == 2:
                    return DeliveryResult(message.send_id, False, False, f"connection lost: {exc}")
        raise AssertionError("unreachable")

    def send_journaled(
        self, message: OutgoingMessage, append: Callable[[DeliveryResult], None], commit: threading.Lock
    ) -> DeliveryResult:
        """Deliver one message and journal its result. MAIL, RCPT, DATA and the body run freely; the
        final dot, the server's reply to it and the journal append run under `commit`, shared by every
        connection of the batch, so at any instant at most one accepted message is not yet journaled
        (the crash guarantee of campaigns.sending.journal, whatever the number of connections).
        campaigns.sending.smtp_loop drives several connections through the same steps in one thread."""
        result = self._send_stepwise(message, append, commit)
        if result is not None:
            return result
        result = self._send_stepwise(message, append, commit, last_try=True)  # after a dropped connection
        assert result is not None
        return result

    def _send_stepwise(
        self,
        message: OutgoingMessage,
        append: Callable[[DeliveryResult], None],
        commit: threading.Lock,
        last_try: bool = False,
    ) -> DeliveryResult | None:
        def done(result: DeliveryResult) -> DeliveryResult:
            append(result)
            return result

        if self._smtp is None:
            try:
                self.connect()
            except (smtplib.SMTPException, OSError) as exc:
                return done(DeliveryResult(message.send_id, False, False, f"cannot connect: {exc}"))
        smtp = self._smtp
        assert smtp is not None
        try:
            smtp.ehlo_or_helo_if_needed()
            for command, arg, ok in (
                ("mail", message.sender, (250,)),
                ("rcpt", message.recipient, (250, 251)),
            ):
                code, text = smtp.mail(arg) if command == "mail" else smtp.rcpt(arg)
                if code not in ok:
                    self._refused(code)
                    return done(DeliveryResult(message.send_id, False, permanent(code), f"{code} {text!r}"))
            code, text = smtp.docmd("data")
            if code != 354:
                self._refused(code)
                return done(DeliveryResult(message.send_id, False, permanent(code), f"{code} {text!r}"))
            smtp.send(dot_stuffed(message.data))  # the server accepts nothing before the final dot
            with commit:
                smtp.send(b".\r\n")
                code, text = smtp.getreply()
                accepted = code == 250
                error = "" if accepted else f"{code} {text!r}"
                result = done(DeliveryResult(message.send_id, accepted, permanent(code), error))
            if code == 421:
                self._refused(code)
            return result
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._smtp = None
            if last_try:
                return done(DeliveryResult(message.send_id, False, False, f"connection lost: {exc}"))
            return None

    def _refused(self, code: int) -> None:
        if code == 421:  # the server is closing this connection
            if self._smtp is not None:
                self._smtp.close()
            self._smtp = None
        else:
            self._reset()

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._smtp = None


DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(data: bytes) -> bytes:
    """A message as DATA sends it: a dot before every line that starts with one (RFC 5321 4.5.2),
    ending with CRLF. Most messages have no such line; looking for one is several times cheaper
    than the substitution finding none."""
    body = DOT.sub(b"..", data) if data.startswith(b".") or b"\n." in data else data
    return body if body.endswith(b"\r\n") else body + b"\r\n"
