"""Several SMTP connections per worker: each lane is one connection with its own journal writer, so
one process keeps several servers' replies in flight at once. SMTP connections are driven together
by one thread (campaigns.sending.smtp_loop); other transports (tests', the demo's, the bench's null
one) are called by that same delivery thread, the lanes taking turns message by message.

A chunk's messages are spread over the lanes, each receiving domain group over at most its
`concurrency` lanes (campaigns.sending.throttling). Every lane journals each reply as it comes, so
the crash guarantees of campaigns.sending.journal hold whatever the number of lanes: the lanes take
turns for the last step of each message (final dot, its reply, journal append), so at most one
accepted message per worker (`dots_in_flight`, 1 by default) is ever unjournaled.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType

from campaigns.sending.delivery import DeliveryResult, SmtpTransport
from campaigns.sending.journal import JournalWriter, SendJournal
from campaigns.sending.message import OutgoingMessage
from campaigns.sending.smtp_loop import SmtpLoop

TransportFactory = Callable[[str], SmtpTransport]


class Delivery:
    """The lanes' futures for one chunk; `result()` waits for all and returns every reply."""

    def __init__(self, futures: list[Future[list[DeliveryResult]]]) -> None:
        self.futures = futures

    def result(self) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        for future in self.futures:
            results.extend(future.result())
        return results


class Lanes:
    def __init__(
        self, factory: TransportFactory, url: str, count: int, journal: SendJournal, dots_in_flight: int = 1
    ) -> None:
        self.count = max(1, count)
        self.dots_in_flight = dots_in_flight
        self.factory, self.url, self.journal = factory, url, journal
        self.transports: list[SmtpTransport] = []
        self.writers: list[JournalWriter] = []
        self.pool = ThreadPoolExecutor(1, "smtp")  # the delivery thread: one chunk at a time
        self.commit = threading.Lock()  # see SmtpTransport.send_journaled
        self.loop: SmtpLoop | None = None

    def __enter__(self) -> Lanes:
        try:
            for _ in range(self.count):
                transport = self.factory(self.url)
                transport.__enter__()
                self.transports.append(transport)
                self.writers.append(self.journal.writer())
        except BaseException:
            self.__exit__()
            raise
        if all(isinstance(t, SmtpTransport) for t in self.transports):
            self.loop = SmtpLoop(self.transports, self.writers, self.dots_in_flight)
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.pool.shutdown(wait=True)
        if self.loop is not None:
            self.loop.close()
        for writer in self.writers:
            writer.close()
        for transport in self.transports:
            transport.__exit__(None, None, None)

    def submit(
        self, messages: Sequence[OutgoingMessage], lanes_of: Callable[[str], Sequence[int]] | None
    ) -> Delivery:
        """Deliver `messages` over the lanes; `lanes_of(recipient)` names the lanes allowed for its
        receiving domain group (all of them when None), which take its messages in turn."""
        per_lane: list[list[OutgoingMessage]] = [[] for _ in range(self.count)]
        if lanes_of is None:
            for i, message in enumerate(messages):
                per_lane[i % self.count].append(message)
        else:
            turn: dict[tuple[int, ...], int] = {}
            for message in messages:
                allowed = tuple(lanes_of(message.recipient))
                k = turn.get(allowed, 0)
                turn[allowed] = k + 1
                per_lane[allowed[k % len(allowed)]].append(message)
        if self.loop is not None:
            return Delivery([self.pool.submit(self.loop.deliver, per_lane)])
        return Delivery([self.pool.submit(self._deliver_each, per_lane)])

    def _deliver_each(self, per_lane: Sequence[Sequence[OutgoingMessage]]) -> list[DeliveryResult]:
        """Transports other than SMTP (tests', the demo's, the bench's null one): the lanes take turns,
        one message each, as the SMTP loop's connections do, so each lane's journal window fills
        while the others send (lane after lane, a journal waiting for Redis's fsync would hold up
        every message behind it). Each lane's window is respected before each of its messages, and
        every append is acknowledged before the results are returned."""
        lanes = [(self.transports[i], self.writers[i], lane) for i, lane in enumerate(per_lane) if lane]
        results: list[list[DeliveryResult]] = [[] for _ in lanes]
        for k in range(max((len(lane) for _t, _w, lane in lanes), default=0)):
            for (transport, writer, lane), done in zip(lanes, results, strict=True):
                if k < len(lane):
                    writer.ready_for_next()  # bounds what a Redis failure can make this lane send twice
                    done.append(transport.send_journaled(lane[k], writer.append, self.commit))
        for _transport, writer, _lane in lanes:
            writer.flush()
        return [r for done in results for r in done]


@contextmanager
def short_gil_switches(seconds: float = 0.0002) -> Iterator[None]:
    """The delivery thread wakes on every SMTP reply; with Python's default 5 ms switch interval it
    would wait that long for the interpreter while the batch's thread renders. Shorter slices keep
    the connections fed."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
