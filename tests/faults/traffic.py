"""The outside world of the fault suite: a counting SMTP sink, and recipients who open and click the
messages it receives, over HTTP against the real web server, counting what was answered 2xx/302."""

from __future__ import annotations

import asyncio
import http.client
import queue
import re
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import urlsplit

from campaigns.events.tokens import TokenSigner

PIXEL = re.compile(r'src="([^"]*/t/o/[^"]+)"')
CLICK = re.compile(r'href="([^"]*/t/c/[^"]+)"')


class CountingSink:
    """An aiosmtpd handler: counts recipients, keeps when each copy arrived (time.monotonic() at the
    final dot, to charge a duplicate to the fault that caused it); every `sample`-th message goes to
    the recipients."""

    def __init__(self, delay: float, sample: int) -> None:
        self.delay = delay
        self.sample = sample
        self.recipients: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}
        self.messages = 0
        self.opened: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrived = time.monotonic()
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.messages += 1
            self.recipients.update(envelope.rcpt_tos)
            for rcpt in envelope.rcpt_tos:
                self.arrivals.setdefault(rcpt, []).append(arrived)
            chosen = self.messages % self.sample == 0
        if chosen:
            self.opened.put(envelope.original_content or envelope.content)
        return "250 OK"


class Recipients(threading.Thread):
    """Opens and clicks sampled messages; `accepted` counts (send_id, kind) answered 2xx or 302."""

    def __init__(self, sink: CountingSink, web_port: int, secret_key: str) -> None:
        super().__init__(name="recipients", daemon=True)
        self.sink = sink
        self.port = web_port
        self.signer = TokenSigner(secret_key)
        self.accepted: Counter[tuple[int, str]] = Counter()
        self.refused = 0  # 503: not durable, the client should retry
        self.failed = 0  # no answer at all (counted, not accepted)
        self.stopping = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        while True:
            try:
                raw = self.sink.opened.get(timeout=0.2)
            except queue.Empty:
                if self.stopping.is_set():
                    return
                continue
            message = message_from_bytes(raw, policy=policy.default)
            html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
            for pattern, kind in ((PIXEL, "open"), (CLICK, "click")):
                found = pattern.search(html)
                if found:
                    self.fire(found.group(1), kind)

    def fire(self, url: str, kind: str) -> None:
        path = urlsplit(url).path
        ref = self.signer.verify(path.rsplit("/", 1)[1], expected_kind=kind)
        assert ref is not None, f"a {kind} link the platform signed does not verify: {url}"
        for _ in range(2):  # one reconnect if the keep-alive connection was closed
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self._conn.request(
                    "GET", path, headers={"User-Agent": "Mozilla/5.0 (fault suite) Firefox/128.0"}
                )
                response = self._conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                continue
            if response.status in (200, 204, 302):
                self.accepted[(ref.send_id, kind)] += 1
            elif response.status == 503:
                self.refused += 1
            else:
                raise AssertionError(f"{kind} answered {response.status}")
            return
        self.failed += 1
