"""A chunk's messages over several SMTP connections, driven by one thread.

Each connection sends its next command as soon as the reply to the previous one is read, and one
thread waits (`selectors`) for whichever replies arrive, instead of a thread per connection waking,
and waiting for the interpreter, on every reply. The per-message steps and their outcomes are exactly
`SmtpTransport.send_journaled`'s, commands and replies byte for byte as smtplib writes and reads them:

- a connection is opened (and greeted, EHLO) when needed; one that cannot be opened gives the message
  "cannot connect: ..." (failed for now);
- MAIL, RCPT and DATA, written together when the server offers PIPELINING (RFC 2920: one round
  trip instead of three; the replies are read in order), else one after another; the first refusal
  among them gives `<code> <reply>` (5xx: for good), then RSET (421: the connection is closed at
  once, whatever replies were still due);
- the body, then the final dot: only `dots_in_flight` connections at a time (1 by default) may have
  sent their dot and not yet journaled the reply (the crash guarantee of campaigns.sending.journal:
  at most that many accepted messages per worker are ever unjournaled). With one, a worker delivers
  at most one message per round trip to the server, whatever its number of connections;
- a connection lost mid-message is re-opened once and the message retried once, then it gives
  "connection lost: ..." (failed for now);
- every result is appended to the connection's journal writer as it comes, and before each message
  the writer's window of unacknowledged appends is respected (`JournalWriter.ready_for_next`).
"""

from __future__ import annotations

import contextlib
import selectors
import smtplib
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from campaigns.sending.delivery import DeliveryResult, SmtpTransport, dot_stuffed
from campaigns.sending.journal import JournalWriter
from campaigns.sending.message import OutgoingMessage
from campaigns.sending.throttle_policy import permanent

CHECK_EVERY = 1.0  # seconds between two looks for replies overdue
_PLAIN_ADDRESS = frozenset('<>()[]\\,;:" \t\r\n')


def _quoted(address: str) -> str:
    """smtplib.quoteaddr, without its parser for the plain addresses the send path uses."""
    if address and not _PLAIN_ADDRESS.intersection(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


@dataclass(eq=False)
class _Connection:
    transport: SmtpTransport
    writer: JournalWriter
    queue: deque[OutgoingMessage]
    results: list[DeliveryResult] = field(default_factory=list)
    message: OutgoingMessage | None = None
    step: str = ""  # the reply awaited: mail | rcpt | data | dot; "" when none
    pipelined: bool = False  # this message's MAIL, RCPT and DATA went out together
    refusal: tuple[int, bytes] | None = None  # a pipelined MAIL or RCPT refused, DATA's reply still due
    retried: bool = False  # this message already lost a connection once
    sock: object | None = None  # the socket registered with the selector
    buffer: bytes = b""
    deadline: float = 0.0


class SmtpLoop:
    """Delivers per-connection message lists over `transports` (one journal writer each)."""

    def __init__(
        self, transports: Sequence[SmtpTransport], writers: Sequence[JournalWriter], dots_in_flight: int = 1
    ) -> None:
        self.transports, self.writers = transports, writers
        self.selector = selectors.DefaultSelector()
        self.dots_in_flight = max(1, dots_in_flight)
        self.committing: set[_Connection] = set()  # sent their dot, reply not yet journaled
        self.waiting: deque[_Connection] = deque()  # body sent, waiting for their turn to send the dot
        self.busy = 0
        self.ready: deque[_Connection] = deque()  # finished a message: start their next one
        self.tls = False  # some connection is TLS: decrypted bytes may wait unseen by the selector
        self.next_check = 0.0

    def close(self) -> None:
        self.selector.close()

    def deliver(self, per_connection: Sequence[Sequence[OutgoingMessage]]) -> list[DeliveryResult]:
        conns = [
            _Connection(self.transports[i], self.writers[i], deque(messages))
            for i, messages in enumerate(per_connection)
        ]
        try:
            for c in conns:
                self._register(c)
                if c.queue:
                    self.busy += 1
                    self.ready.append(c)
            while self.busy:
                while self.ready:
                    self._next(self.ready.popleft())
                if self.busy:
                    self._wait()
            for c in conns:  # every append acknowledged before the ledger records these results
                c.writer.flush()
        finally:
            for c in conns:
                self._unregister(c)
            self.committing.clear()
            self.busy = 0
            self.waiting.clear()
            self.ready.clear()
        return [r for c in conns for r in c.results]

    # --- the event loop

    def _wait(self) -> None:
        ready = [c for c in self._registered() if c.step and _tls_pending(c)] if self.tls else []
        if not ready:
            ready = [key.data for key, _ in self.selector.select(CHECK_EVERY)]
        for c in ready:
            if c.step:
                self._read(c)
            else:
                self._idle_read(c)
        now = time.monotonic()
        if now >= self.next_check:  # replies awaited longer than the transport's timeout
            self.next_check = now + CHECK_EVERY
            for c in self._registered():
                if c.step not in ("", "wait") and now > c.deadline:
                    self._lost(c, "timed out")

    def _registered(self) -> list[_Connection]:
        return [key.data for key in self.selector.get_map().values()]

    def _idle_read(self, c: _Connection) -> None:
        """Something from a connection with nothing asked of it: the server closing it (421 idle)."""
        try:
            data = c.sock.recv(65536)  # type: ignore[attr-defined]
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self._unregister(c)
            smtp, c.transport._smtp = c.transport._smtp, None
            if smtp is not None:
                smtp.close()

    def _register(self, c: _Connection) -> None:
        smtp = c.transport._smtp
        sock = smtp.sock if smtp is not None else None
        if sock is c.sock:
            return
        self._unregister(c)
        if sock is not None:
            self.selector.register(sock, selectors.EVENT_READ, c)
            c.sock = sock
            self.tls = self.tls or isinstance(sock, ssl.SSLSocket)

    def _unregister(self, c: _Connection) -> None:
        if c.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(c.sock)  # type: ignore[arg-type]
            c.sock = None

    # --- one message's steps

    def _next(self, c: _Connection) -> None:
        if not c.queue:
            c.message, c.step = None, ""
            self.busy -= 1
            return
        c.message, c.retried = c.queue.popleft(), False
        c.writer.ready_for_next()  # bounds what a Redis failure can make this connection send twice
        self._begin(c)

    def _begin(self, c: _Connection) -> None:
        assert c.message is not None
        t = c.transport
        if t._smtp is None:
            try:
                t.connect()
            except (smtplib.SMTPException, OSError) as exc:
                self._finish(c, DeliveryResult(c.message.send_id, False, False, f"cannot connect: {exc}"))
                return
        smtp = t._smtp
        assert smtp is not None
        try:
            smtp.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as exc:
            self._lost(c, str(exc))
            return
        self._register(c)
        c.refusal, c.pipelined = None, "pipelining" in smtp.esmtp_features
        mail = f"mail FROM:{_quoted(c.message.sender)}\r\n"
        if c.pipelined:
            self._command(c, "mail", f"{mail}rcpt TO:{_quoted(c.message.recipient)}\r\ndata\r\n")
        else:
            self._command(c, "mail", mail)

    def _command(self, c: _Connection, step: str, line: str | bytes) -> None:
        c.step, c.buffer = step, b""
        c.deadline = time.monotonic() + c.transport.config.timeout
        try:
            data = line.encode("ascii") if isinstance(line, str) else line
            c.transport._smtp.sock.sendall(data)  # type: ignore[union-attr]
        except OSError as exc:
            self._lost(c, str(exc))

    def _read(self, c: _Connection) -> None:
        try:
            data = c.sock.recv(65536)  # type: ignore[attr-defined]
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        except OSError as exc:
            self._lost(c, str(exc))
            return
        if not data:
            self._lost(c, "Connection unexpectedly closed")
            return
        c.buffer += data
        while c.step and (reply := _take_reply(c.buffer)) is not None:
            code, text, c.buffer = reply
            self._replied(c, code, text)

    def _replied(self, c: _Connection, code: int, text: bytes) -> None:
        message, step = c.message, c.step
        assert message is not None
        if c.pipelined and step in ("mail", "rcpt", "data"):
            self._pipelined(c, message, step, code, text)
        elif step == "mail" and code == 250:
            self._command(c, "rcpt", f"rcpt TO:{_quoted(message.recipient)}\r\n")
        elif step == "rcpt" and code in (250, 251):
            self._command(c, "data", "data\r\n")
        elif step == "data" and code == 354:
            self._body(c, message)
        elif step in ("mail", "rcpt", "data"):
            self._refused(c, code, text)
        elif step == "ended":  # the empty message ended after a pipelined refusal
            assert c.refusal is not None
            self._refused(c, *c.refusal)
        elif step == "dot":
            accepted = code == 250
            error = "" if accepted else f"{code} {text!r}"
            # journaled first, then the turn passes: releasing first let the next connection's dot
            # go out while this acceptance was not yet journaled, two unjournaled messages at once
            # (a worker killed there re-sent both)
            self._finish(c, DeliveryResult(message.send_id, accepted, permanent(code), error))
            self._release(c)
            if code == 421:
                c.transport._refused(code)
                self._unregister(c)

    def _pipelined(self, c: _Connection, message: OutgoingMessage, step: str, code: int, text: bytes) -> None:
        """MAIL, RCPT and DATA were written together: their replies come in that order. The first
        refusal is the message's outcome, given once DATA's reply is read (a 421 at once: the
        server is closing the connection and sends nothing more)."""
        if code == 421:
            self._refused(c, code, text)
            return
        if step != "data":
            if c.refusal is None and code not in (250, 251):
                c.refusal = (code, text)
            c.step = "rcpt" if step == "mail" else "data"
            return
        if c.refusal is None and code == 354:
            self._body(c, message)
            return
        if code == 354:  # DATA accepted after a refusal: end the empty message, then report the refusal
            c.step = "ended"
            c.deadline = time.monotonic() + c.transport.config.timeout
            try:
                c.transport._smtp.sock.sendall(b".\r\n")  # type: ignore[union-attr]
            except OSError as exc:
                self._lost(c, str(exc))
            return
        self._refused(c, *(c.refusal or (code, text)))

    def _body(self, c: _Connection, message: OutgoingMessage) -> None:
        body = dot_stuffed(message.data)
        if len(self.committing) < self.dots_in_flight:  # our turn at once: body and final dot in one write
            self._commit(c, body)
            return
        try:  # the server accepts nothing before the final dot, sent when our turn comes
            c.transport._smtp.sock.sendall(body)  # type: ignore[union-attr]
        except OSError as exc:
            self._lost(c, str(exc))
            return
        c.step = "wait"
        self.waiting.append(c)

    def _commit(self, c: _Connection, body: bytes = b"") -> None:
        self.committing.add(c)
        self._command(c, "dot", body + b".\r\n")

    def _release(self, c: _Connection) -> None:
        if c in self.committing:
            self.committing.discard(c)
            while self.waiting and len(self.committing) < self.dots_in_flight:
                self._commit(self.waiting.popleft())

    def _refused(self, c: _Connection, code: int, text: bytes) -> None:
        assert c.message is not None
        result = DeliveryResult(c.message.send_id, False, permanent(code), f"{code} {text!r}")
        c.step = ""
        c.transport._refused(code)  # RSET, or for 421 the connection closed
        self._register(c)
        self._finish(c, result)

    def _lost(self, c: _Connection, reason: str) -> None:
        assert c.message is not None
        self._release(c)
        if c in self.waiting:
            self.waiting.remove(c)
        c.step = ""
        self._unregister(c)
        smtp, c.transport._smtp = c.transport._smtp, None
        if smtp is not None:
            smtp.close()
        if not c.retried:  # re-opened once, the message retried once
            c.retried = True
            self._begin(c)
            return
        self._finish(c, DeliveryResult(c.message.send_id, False, False, f"connection lost: {reason}"))

    def _finish(self, c: _Connection, result: DeliveryResult) -> None:
        c.step = ""
        c.writer.append(result)
        c.results.append(result)
        self.ready.append(c)


def _take_reply(buffer: bytes) -> tuple[int, bytes, bytes] | None:
    """The first complete reply in `buffer` as smtplib.getreply reads it: (code, lines joined by
    "\\n", what follows it in the buffer); None until its last line has arrived."""
    start = 0
    while (end := buffer.find(b"\n", start)) != -1:
        line = buffer[start:end]
        start = end + 1
        if line[3:4] != b"-":
            lines = buffer[:start].split(b"\n")[:-1]
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
            return code, b"\n".join(part[4:].strip(b" \t\r\n") for part in lines), buffer[start:]
    return None


def _tls_pending(c: _Connection) -> bool:
    """Decrypted bytes already read off the socket: the selector would not report them."""
    pending = getattr(c.sock, "pending", None)
    return bool(pending and pending())
