"""Tracking on the request path: verify, push the raw event to a Redis stream, answer at once.

No database write happens here. An event is acknowledged (2xx) only once it is durable: the `XADD`
answered by a Redis that syncs its append-only file on every write (campaigns.ops.durability), or, while
Redis is unreachable, the event fsynced to the web process's spool (campaigns.events.spool), drained into
the stream when Redis answers again. When neither holds, the endpoint answers 503. The ingest worker
(campaigns.events.ingest) reads the stream with a consumer group, so an accepted event stays pending until a
worker has stored it: a crash loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from campaigns.events.spool import EventSpool
from campaigns.events.tokens import TokenSigner, TrackingRef

log = logging.getLogger(__name__)
STREAM = "mailramp:events"
# Conversion values (revenue) are finite and within +-this; negative ones (refunds) only through the API.
MAX_CONVERSION_VALUE = 1_000_000.0
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per event
GROUP = "ingest"
# A transparent 1x1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass(frozen=True)
class RawEvent:
    kind: str
    send_id: int
    link_id: int | None = None
    item_id: int | None = None
    value: float = 0.0
    user_agent: str = ""
    ip: str = ""
    method: str = "GET"
    at: float = 0.0
    key: str = ""  # dedupe key: replays of the same stream entry or the same order store once
    detail: str = ""  # bounces and complaints: the reply or report, in words
    source: str = ""  # bounces and complaints: smtp | dsn | arf | ses | sendgrid | postmark | mailgun

    def to_fields(self) -> dict[str, str]:
        return {"e": _COMPACT.encode(self.__dict__)}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> RawEvent:
        data: dict[str, Any] = json.loads(fields[b"e"])
        return cls(**data)


def _complete(event: RawEvent) -> RawEvent:
    if not event.key:
        event = RawEvent(**{**event.__dict__, "key": uuid.uuid4().hex})
    if not event.at:
        event = RawEvent(**{**event.__dict__, "at": time.time()})
    return event


def push(redis: Redis, event: RawEvent) -> str:
    entry_id = redis.xadd(STREAM, _complete(event).to_fields())
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class EventIntake:
    """The request path's one call: make an event durable, in Redis or else in the spool.

    After a Redis failure the next `RETRY_REDIS_AFTER` seconds go straight to the spool, so an
    outage does not make every request wait on connection retries; spooled events are drained into
    the stream on a later request once Redis answers.
    """

    RETRY_REDIS_AFTER = 1.0

    def __init__(self, redis: Redis, spool: EventSpool) -> None:
        self.redis = redis
        self.spool = spool
        self._redis_down_until = 0.0
        self._lock = threading.Lock()
        self._drainer: threading.Thread | None = None

    def redis_presumed_up(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def redis_failed(self) -> None:
        self._redis_down_until = time.monotonic() + self.RETRY_REDIS_AFTER

    def accept(self, event: RawEvent) -> bool:
        """True when the event is durable; False when it could be made durable nowhere (answer 503)."""
        fields = _complete(event).to_fields()
        if self.redis_presumed_up():
            try:
                self.redis.xadd(STREAM, fields)
            except RedisError:
                self.redis_failed()
            else:
                self._drain()
                return True
        try:
            self.spool.append(fields)
        except OSError:
            return False
        self._start_drainer()
        return True

    def _start_drainer(self) -> None:
        """Without traffic there is no request to drain the spool: a thread does it once Redis
        answers, then ends."""
        with self._lock:
            if self._drainer is not None and self._drainer.is_alive():
                return
            self._drainer = threading.Thread(
                target=self._drain_until_empty, name="spool-drainer", daemon=True
            )
            self._drainer.start()

    def _drain_until_empty(self) -> None:
        while True:
            time.sleep(self.RETRY_REDIS_AFTER)
            try:
                self.spool.drain(self.redis, STREAM)
            except RedisError:
                continue
            except OSError:
                log.exception("could not read the event spool")
                continue
            with self._lock:
                if self.spool.pending() == 0:
                    self._drainer = None
                    return

    def _drain(self) -> None:
        try:
            self.spool.drain_if_due(self.redis, STREAM)
        except RedisError:
            self.redis_failed()


def verify(signer: TokenSigner, token: str, kind: str) -> TrackingRef | None:
    return signer.verify(token, expected_kind=kind)


def conversion_key(campaign_id: int, contact_id: int, order_id: str | None) -> str:
    """Replays of the same order store once; conversions without an order id are all kept."""
    if order_id:
        return order_key(f"{campaign_id}:{contact_id}", order_id)
    return uuid.uuid4().hex


def order_key(scope: str, order_id: str) -> str:
    """A dedupe key that keeps the whole order id (hashed: the column holds 100 characters)."""
    return "conv:" + hashlib.sha256(f"{scope}:{order_id}".encode()).hexdigest()
