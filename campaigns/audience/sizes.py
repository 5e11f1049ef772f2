"""Segment sizes, counted once and kept in Redis for a few minutes.

Counting a behavioural segment (purchases, spend, recency) scans the purchase history: a fraction of
a second per segment on the demo data, seconds for a list of them. Lists show the sizes already
counted (`known_sizes`, one Redis round trip for all) and let the browser ask for the others one at
a time (`size`, which counts and stores). The key holds a hash of the rules, so an edited segment is
counted again at once; contacts that change show up when the entry expires (`TTL_SECONDS`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from sqlalchemy.orm import Session

from campaigns.audience import rules as audience

TTL_SECONDS = 300
PREFIX = "mailramp:segment-size:"


@dataclass(frozen=True)
class Size:
    sendable: int
    counted_at: datetime


def _key(segment_id: int | None, rules: Any) -> str:
    digest = hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{PREFIX}{segment_id if segment_id is not None else 'everyone'}:{digest}"


def _decode(raw: bytes | str | None) -> Size | None:
    if raw is None:
        return None
    try:
        body = json.loads(raw)
        return Size(int(body["sendable"]), datetime.fromisoformat(body["at"]))
    except (ValueError, KeyError, TypeError):
        return None


def known_sizes(redis: Redis, segments: Sequence[Any]) -> dict[int, Size]:
    """Sizes already counted, for segments with `id` and `rules` (the rest are missing)."""
    if not segments:
        return {}
    values = redis.mget([_key(s.id, s.rules) for s in segments])
    out = {}
    for segment, raw in zip(segments, values, strict=True):
        found = _decode(raw)
        if found is not None:
            out[int(segment.id)] = found
    return out


def size(
    redis: Redis, session: Session, segment_id: int | None, rules: Any, now: datetime | None = None
) -> Size:
    """The sendable size of a segment: from Redis when counted recently, else counted and stored.
    InputError when the rules are invalid."""
    key = _key(segment_id, rules)
    found = _decode(redis.get(key))
    if found is not None:
        return found
    now = now or datetime.now(UTC)
    counted = Size(audience.count(session, rules, sendable_only=True, now=now), now)
    redis.set(key, json.dumps({"sendable": counted.sendable, "at": now.isoformat()}), ex=TTL_SECONDS)
    return counted
