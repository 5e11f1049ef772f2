"""A real SMTP server (aiosmtpd) for the deliverability tests: keeps the raw bytes and the receive time
of every message, and answers per recipient as a receiving domain would (refuse, defer some)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Received:
    at: float
    mail_from: str
    rcpt: str
    data: bytes


@dataclass
class RecordingSink:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply (5xx or 4xx)
    # recipient domain -> (reply, how many times): answer with `reply` the first n RCPTs of each address
    defer_first: dict[str, tuple[str, int]] = field(default_factory=dict)
    defer_once: dict[str, str] = field(default_factory=dict)  # recipient -> 4xx reply, the first time only
    deferred: list[tuple[float, str]] = field(default_factory=list)
    _tries: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if address in self.defer_once:
            with self._lock:
                reply = self.defer_once.pop(address, None)
            if reply is not None:
                self.deferred.append((time.monotonic(), address))
                return reply
        domain = address.rpartition("@")[2]
        rule = self.defer_first.get(domain)
        if rule is not None:
            with self._lock:
                tries = self._tries.get(address, 0)
                self._tries[address] = tries + 1
            if tries < rule[1]:
                self.deferred.append((time.monotonic(), address))
                return rule[0]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        for rcpt in envelope.rcpt_tos:
            self.received.append(Received(time.monotonic(), envelope.mail_from, rcpt, data))
        return "250 Message accepted for delivery"

    def to(self, rcpt: str) -> list[Received]:
        return [r for r in self.received if r.rcpt == rcpt]


@contextmanager
def running(sink: RecordingSink) -> Iterator[RecordingSink]:
    sink.port = sink.port or free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
