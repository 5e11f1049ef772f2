"""Several SMTP connections driven by one thread (campaigns.sending.smtp_loop) give, message for
message, what one connection's `SmtpTransport.send_journaled` gives: refusals at MAIL and RCPT,
deferrals, a 421 at RCPT and at the final dot, a connection dropped mid-message (re-opened, retried
once), dot-stuffed bodies, and a journal entry per message; the same when the server offers
PIPELINING and MAIL, RCPT and DATA go out together."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis import Redis

from campaigns.sending.delivery import DeliveryResult, SmtpConfig, SmtpTransport
from campaigns.sending.journal import WINDOW, SendJournal
from campaigns.sending.lanes import Lanes
from campaigns.sending.message import OutgoingMessage
from campaigns.sending.smtp_loop import SmtpLoop
from tests.conftest import free_port


@dataclass
class ScriptedSink:
    """Answers by sender (refuse at MAIL) and by recipient: refuse at RCPT, 421 at the final dot,
    drop the connection once at DATA. Offers PIPELINING when asked to."""

    refuse_sender: dict[str, str] = field(default_factory=dict)
    refuse: dict[str, str] = field(default_factory=dict)
    at_dot: dict[str, str] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)
    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pipelining: bool = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]] if self.pipelining else responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse_sender:
            return self.refuse_sender[address]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            if self.refuse[address].startswith("421"):  # the server closes the connection after its 421
                asyncio.get_running_loop().call_soon(server.transport.close)
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0]
        with self.lock:
            if rcpt in self.drop_once:
                self.drop_once.discard(rcpt)
                server.transport.close()
                return "250 never seen"
        if rcpt in self.at_dot:
            return self.at_dot[rcpt]
        with self.lock:
            self.bodies.setdefault(rcpt, []).append(envelope.original_content)
        return "250 Message accepted for delivery"


def script(pipelining: bool = False) -> ScriptedSink:
    return ScriptedSink(
        refuse_sender={"blocked-bounce@example.com": "553 5.7.1 sender not allowed"},
        refuse={
            "gone@example.com": "550 5.1.1 no such user",
            "later@example.com": "451 4.7.1 try later",
            "closing@example.com": "421 4.3.2 closing now",
        },
        at_dot={"busy@example.com": "421 4.3.2 closing"},
        drop_once={"flaky@example.com"},
        pipelining=pipelining,
    )


@pytest.fixture()
def serve() -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(sink: ScriptedSink) -> str:
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return f"smtp://127.0.0.1:{port}"

    yield start
    for controller in controllers:
        controller.stop()


def messages() -> list[OutgoingMessage]:
    names = ["a", "gone", "b", "later", "busy", "c", "flaky", "d", "e", "f", "g", "h", "blocked", "closing"]
    body = b"Subject: hi\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\nend"
    return [
        OutgoingMessage(
            i,
            "blocked-bounce@example.com" if name == "blocked" else "bounce@example.com",
            f"{name}@example.com",
            f"<{i}@example.com>",
            body,
        )
        for i, name in enumerate(names, start=1)
    ]


def one_connection(url: str, redis: Redis) -> list[DeliveryResult]:
    journal = SendJournal(redis, 1, 0)
    writer, commit = journal.writer(), threading.Lock()
    with SmtpTransport(SmtpConfig.from_url(url)) as smtp:
        results = [smtp.send_journaled(m, writer.append, commit) for m in messages()]
    writer.close()
    return results


@pytest.mark.parametrize(
    ("pipelining", "dots"),
    [(False, 1), (True, 1), (True, 4)],
    ids=["one-by-one", "pipelined", "pipelined-4-dots-in-flight"],
)
def test_loop_gives_what_one_connection_gives(
    serve: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch, pipelining: bool, dots: int
) -> None:
    expected_sink, loop_sink = script(), script(pipelining)
    expected = one_connection(serve(expected_sink), redis)  # smtplib, one command at a time
    journal = SendJournal(redis, 2, 0)
    url = serve(loop_sink)
    envelopes: list[bytes] = []  # what the loop writes when it starts a message
    most_dots = 0  # final dots awaiting their reply at once
    command = SmtpLoop._command

    def spy(self: SmtpLoop, c: Any, step: str, line: str | bytes) -> None:
        nonlocal most_dots
        if step == "mail":
            envelopes.append(line.encode() if isinstance(line, str) else line)
        command(self, c, step, line)
        most_dots = max(most_dots, len(self.committing))

    monkeypatch.setattr(SmtpLoop, "_command", spy)
    with Lanes(lambda u: SmtpTransport(SmtpConfig.from_url(u)), url, 4, journal, dots) as lanes:
        assert lanes.loop is not None  # SMTP connections are driven by one thread
        first = lanes.submit(messages()[:6], None).result()
        assert len(journal.entries()) == 6  # a chunk's entries are all in Redis when it returns
        second = lanes.submit(messages()[6:], None).result()  # connections reused, the 421 one re-opened
    got = sorted(first + second, key=lambda r: r.send_id)
    assert got == expected
    by_id = {r.send_id: r for r in got}
    assert by_id[2].permanent and by_id[2].error.startswith("550 ")
    assert not by_id[4].accepted and not by_id[4].permanent and by_id[4].error.startswith("451 ")
    assert not by_id[5].accepted and by_id[5].error.startswith("421 ")
    assert by_id[7].accepted  # dropped once, re-opened and retried
    assert by_id[13].permanent and by_id[13].error.startswith("553 ")  # refused at MAIL
    assert not by_id[14].accepted and not by_id[14].permanent and by_id[14].error.startswith("421 ")
    assert sum(r.accepted for r in got) == 9
    # MAIL, RCPT and DATA in one write exactly when the server offers PIPELINING
    assert len(envelopes) >= 14
    assert all((b"\r\nrcpt TO:" in e and e.endswith(b"\r\ndata\r\n")) is pipelining for e in envelopes)
    assert 1 <= most_dots <= dots  # never more unjournaled acceptances than the bound allows
    # every message journaled once; bodies arrive byte for byte (dot-stuffing undone by the server)
    assert sorted(e.send_id for e in journal.entries()) == list(range(1, 15))
    assert loop_sink.bodies == expected_sink.bodies
    assert loop_sink.bodies["a@example.com"][0].endswith(b".starts with a dot\r\n..two dots\r\nend\r\n")


def test_server_gone_mid_batch_fails_each_message_for_now(redis: Redis) -> None:
    sink = script()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    journal = SendJournal(redis, 3, 0)
    factory = lambda u: SmtpTransport(SmtpConfig.from_url(u))  # noqa: E731
    with Lanes(factory, f"smtp://127.0.0.1:{port}", 2, journal) as lanes:
        assert all(r.accepted for r in lanes.submit(messages()[:1], None).result())
        controller.stop()
        results = lanes.submit(messages()[7:12], None).result()
    assert [r.send_id for r in sorted(results, key=lambda r: r.send_id)] == list(range(8, 13))
    assert not any(r.accepted or r.permanent for r in results)
    assert all(r.error.startswith(("connection lost", "cannot connect")) for r in results)
    assert len(journal.entries()) == 6


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
def test_a_final_dot_goes_out_only_once_every_earlier_acceptance_is_journaled(
    redis: Redis, serve: Any, pipelining: bool
) -> None:
    """With one dot in flight (the default), a worker killed at any instant has at most one accepted
    message not journaled: so no connection sends its final dot while another's acceptance waits for
    its journal append. Order of events in the loop's thread: "dot" when a final dot is written,
    "journal" when a result is appended."""
    url = serve(ScriptedSink(pipelining=pipelining))
    events: list[tuple[str, int]] = []
    journal = SendJournal(redis, 4, 0)
    transports = [SmtpTransport(SmtpConfig.from_url(url)) for _ in range(3)]
    writers = [journal.writer() for _ in transports]
    for writer in writers:
        append = writer.append

        def journaled(result: DeliveryResult, append: Any = append) -> None:
            events.append(("journal", result.send_id))
            append(result)

        writer.append = journaled  # type: ignore[method-assign]
    loop = SmtpLoop(transports, writers, dots_in_flight=1)
    commit = loop._commit

    def dot(c: Any, body: bytes = b"") -> None:
        events.append(("dot", c.message.send_id))
        commit(c, body)

    loop._commit = dot  # type: ignore[method-assign]
    body = b"Subject: hi\r\n\r\nbody\r\n"
    batch = [
        OutgoingMessage(i, "bounce@example.com", f"r{i}@example.com", f"<{i}@x>", body) for i in range(1, 31)
    ]
    try:
        results = loop.deliver([batch[0::3], batch[1::3], batch[2::3]])
    finally:
        loop.close()
        for writer in writers:
            writer.close()
        for transport in transports:
            transport.close()
    assert all(r.accepted for r in results) and len(results) == 30
    unjournaled: set[int] = set()
    for kind, send_id in events:
        if kind == "dot":
            assert not unjournaled, f"dot of {send_id} sent while {unjournaled} accepted but not journaled"
            unjournaled.add(send_id)
        else:
            unjournaled.discard(send_id)
    assert [kind for kind, _ in events].count("dot") == 30


@dataclass
class _Accepting:
    """A transport other than SMTP (as the demo's): accepts each message at once and journals it."""

    lane: int
    log: list[tuple[int, int, int]]  # (lane, send id, this lane's unacknowledged appends)
    writer: Any = None

    def __enter__(self) -> _Accepting:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send_journaled(self, message: OutgoingMessage, append: Any, commit: threading.Lock) -> DeliveryResult:
        self.log.append((self.lane, message.send_id, self.writer.unread))
        result = DeliveryResult(message.send_id, True)
        append(result)
        return result


def test_other_transports_take_turns_within_each_journal_window(redis: Redis) -> None:
    """Lanes of a transport other than SMTP are called message by message in turn (each lane's
    journal appends await Redis while the others send), each lane never more than its window of
    appends ahead of Redis, and every entry is in Redis when the chunk's results come back."""
    log: list[tuple[int, int, int]] = []
    made: list[_Accepting] = []

    def factory(url: str) -> Any:
        made.append(_Accepting(len(made), log))
        return made[-1]

    journal = SendJournal(redis, 4, 0)
    with Lanes(factory, "null://", 3, journal) as lanes:
        for transport, writer in zip(made, lanes.writers, strict=True):
            transport.writer = writer
        results = lanes.submit(messages() * 2, None).result()
    assert len(results) == 28 and all(r.accepted for r in results)
    assert [lane for lane, _id, _unread in log[:6]] == [0, 1, 2, 0, 1, 2]
    assert max(unread for _lane, _id, unread in log) < WINDOW
    assert len(journal.entries()) == 28
