"""Tracking on the request path: verify, push the raw event to a Redis stream, answer at once.

No database write happens here. The ingest worker (campaigns.ingest) reads the stream with a consumer
group, so an accepted event stays pending until a worker has stored it: a crash loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis import Redis

from campaigns.tokens import TokenSigner, TrackingRef

STREAM = "mailramp:events"
# Conversion values (revenue) are finite and within +-this; negative ones (refunds) only through the API.
MAX_CONVERSION_VALUE = 1_000_000.0
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
        return {"e": json.dumps(self.__dict__, separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> RawEvent:
        data: dict[str, Any] = json.loads(fields[b"e"])
        return cls(**data)


def push(redis: Redis, event: RawEvent) -> str:
    if not event.key:
        event = RawEvent(**{**event.__dict__, "key": uuid.uuid4().hex})
    if not event.at:
        event = RawEvent(**{**event.__dict__, "at": time.time()})
    entry_id = redis.xadd(STREAM, event.to_fields())
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


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
