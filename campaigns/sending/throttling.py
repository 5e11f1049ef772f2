"""Throttling and warm-up, shared by every worker on every host through Redis.

Receiving domains fall into groups (Gmail, Microsoft, Yahoo, Apple; every other domain is a group of
its own with the `other` limits). Each group has a token bucket (`rate_per_second`, `burst`) and a
number of connections a worker may deliver to it over at once (`concurrency`). On top: an optional
platform-wide hourly cap (a bucket of `hourly_cap` tokens refilled over the hour) and an optional
warm-up plan (a cap per UTC day that grows day by day from the plan's start).

The send path asks once per chunk (`Throttle.admit`: one Lua script, one round trip) how many of the
chunk's messages each group may send now; the rest stay `queued`, untouched, and are tried again
when their group has tokens. A 4xx deferral (421, 450, 451, 452) pauses the group for
`deferral_pause_seconds` (doubling while deferrals continue) and halves its rate for a while; other
groups go on at their own pace.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from redis import Redis

from campaigns.sending.throttle_policy import (
    DomainGroup,
    ThrottlePolicy,
)

PREFIX = "mailramp:throttle"


_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local function level(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil then return burst end
  return math.min(burst, tokens + math.max(0, now - ts) * rate)
end
local hourly = tonumber(ARGV[1])
local daily = tonumber(ARGV[2])
local budget = 1e18
local hourly_level = 0
if hourly > 0 then
  hourly_level = level(KEYS[1], hourly / 3600, hourly)
  budget = math.floor(hourly_level)
end
local used_today = 0
if daily >= 0 then
  used_today = tonumber(redis.call('GET', KEYS[2]) or '0')
  budget = math.min(budget, math.max(0, daily - used_today))
end
local out = {}
local total = 0
local n = (#KEYS - 2) / 3
for i = 1, n do
  local bucket, pause, slow = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local rate, burst, want = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  local factor = tonumber(redis.call('GET', slow) or '1')
  rate = rate * factor
  local paused = redis.call('PTTL', pause)
  if paused > 0 then
    out[#out + 1] = 0
    out[#out + 1] = paused
  else
    local tokens = level(bucket, rate, burst)
    local grant = math.max(0, math.min(want, math.floor(tokens), budget - total))
    tokens = tokens - grant
    total = total + grant
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(now))
    redis.call('EXPIRE', bucket, 86400)
    out[#out + 1] = grant
    if grant < want and tokens < 1 then
      out[#out + 1] = math.ceil((1 - tokens) / rate * 1000)
    else
      out[#out + 1] = 0
    end
  end
end
local global_wait = 0
if hourly > 0 then
  local left = hourly_level - total
  redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[1], 7200)
  if left < 1 then global_wait = math.ceil((1 - left) / (hourly / 3600) * 1000) end
end
if daily >= 0 then
  redis.call('INCRBY', KEYS[2], total)
  redis.call('EXPIRE', KEYS[2], 172800)
  if used_today + total >= daily then global_wait = math.max(global_wait, tonumber(ARGV[3]) * 1000) end
end
out[#out + 1] = global_wait
return out
"""


# Connection leases: KEYS one sorted set per bucket (member = "<owner>:<lane>", score = expiry).
# ARGV: ttl, then per bucket: limit, number of candidate lanes, the candidates. A lane already
# holding a lease keeps it (refreshed); a new one gets it while the bucket has fewer than `limit`.
# Returns per bucket the granted candidates' positions, comma-separated.
_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ttl = tonumber(ARGV[1])
local a = 2
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local got = {}
  for j = 1, n do
    local member = ARGV[a + j - 1]
    if redis.call('ZSCORE', key, member) or redis.call('ZCARD', key) < limit then
      redis.call('ZADD', key, now + ttl, member)
      got[#got + 1] = tostring(j - 1)
    end
  end
  a = a + n
  redis.call('EXPIRE', key, math.ceil(ttl) * 2)
  out[#out + 1] = table.concat(got, ',')
end
return out
"""
LEASE_SECONDS = 120.0  # refreshed with every chunk; a dead worker's leases lapse after this


@dataclass(frozen=True)
class Admission:
    granted: dict[str, int]  # bucket -> messages it may send now
    wait_seconds: float  # until more could be granted (0: nothing is held back)


class Throttle:
    def __init__(self, redis: Redis, policy: ThrottlePolicy) -> None:
        self.redis = redis
        self.policy = policy
        self._admit = redis.register_script(_ADMIT)
        self._lease = redis.register_script(_LEASE)

    def admit(
        self, wanted: Mapping[str, int], now: datetime | None = None, sender_domain: str = ""
    ) -> Admission:
        """How many messages each bucket (see `ThrottlePolicy.group_of`) may send now, taken at once;
        `sender_domain` (the From domain) picks the warm-up plan."""
        now = now or datetime.now(UTC)
        buckets = sorted(b for b, n in wanted.items() if n > 0)
        if not buckets:
            return Admission({}, 0.0)
        today = now.date()
        domain = sender_domain.lower() if sender_domain.lower() in self.policy.warmups else "*"
        plan = self.policy.warmups.get(domain)
        cap = plan.cap_on(today) if plan else None
        midnight = datetime.combine(today, datetime.min.time(), UTC).timestamp() + 86400 - now.timestamp()
        keys = [f"{PREFIX}:hourly", f"{PREFIX}:warmup:{domain}:{today.isoformat()}"]
        args: list[Any] = [self.policy.hourly_cap or 0, -1 if cap is None else cap, math.ceil(midnight)]
        for bucket in buckets:
            group = self._limits(bucket)
            keys += [f"{PREFIX}:bucket:{bucket}", f"{PREFIX}:pause:{bucket}", f"{PREFIX}:slow:{bucket}"]
            args += [group.rate_per_second, group.burst, wanted[bucket]]
        reply = [int(x) for x in self._admit(keys=keys, args=args)]
        granted = {b: reply[2 * i] for i, b in enumerate(buckets)}
        waits = [reply[2 * i + 1] for i, b in enumerate(buckets) if granted[b] < wanted[b]]
        global_wait = reply[-1] if any(granted[b] < wanted[b] for b in buckets) else 0
        held = [w for w in waits if w > 0]
        wait_ms = max(min(held) if held else 0, global_wait)
        return Admission(granted, wait_ms / 1000)

    def defer(self, bucket: str) -> float:
        """A 4xx deferral from this bucket's servers: pause it and lower its rate for a while. Replies
        that arrive while the bucket is already paused (messages in flight) do not compound; each new
        deferral after a pause doubles the next pause and halves the rate again, down to
        `slowest_factor` of the configured rate."""
        pause_key, slow_key = f"{PREFIX}:pause:{bucket}", f"{PREFIX}:slow:{bucket}"
        if self.redis.exists(pause_key):
            return 0.0
        count = int(self.redis.incr(f"{PREFIX}:deferrals:{bucket}"))
        pause = min(self.policy.max_pause_seconds, self.policy.deferral_pause_seconds * 2 ** (count - 1))
        window = max(600, int(pause * 4))
        factor = max(self.policy.slowest_factor, float(self.redis.get(slow_key) or 1.0) / 2)
        pipe = self.redis.pipeline()
        pipe.expire(f"{PREFIX}:deferrals:{bucket}", window)
        pipe.set(pause_key, 1, px=max(1, int(pause * 1000)))
        pipe.set(slow_key, factor, ex=window)
        pipe.execute()
        return pause

    def lease(self, buckets: Iterable[str], lanes: int, owner: str) -> dict[str, list[int]]:
        """The lanes (connections) of `owner` that may deliver to each bucket now, counted against the
        bucket's `concurrency` over every worker on every host."""
        wanted = sorted(set(buckets))
        if not wanted:
            return {}
        keys: list[str] = []
        args: list[Any] = [LEASE_SECONDS]
        candidates: dict[str, list[int]] = {}
        for bucket in wanted:
            limit = self._limits(bucket).concurrency
            offset = zlib.crc32(bucket.encode())
            candidates[bucket] = [(offset + k) % lanes for k in range(min(limit, lanes))]
            keys.append(f"{PREFIX}:conn:{bucket}")
            args += [limit, len(candidates[bucket]), *(f"{owner}:{lane}" for lane in candidates[bucket])]
        reply = self._lease(keys=keys, args=args)
        out = {}
        for bucket, granted in zip(wanted, reply, strict=True):
            text = granted.decode() if isinstance(granted, bytes) else str(granted)
            out[bucket] = [candidates[bucket][int(j)] for j in text.split(",") if j]
        return out

    def release(self, buckets: Iterable[str], lanes: int, owner: str) -> None:
        pipe = self.redis.pipeline()
        for bucket in set(buckets):
            pipe.zrem(f"{PREFIX}:conn:{bucket}", *(f"{owner}:{lane}" for lane in range(lanes)))
        pipe.execute()

    def _limits(self, bucket: str) -> DomainGroup:
        if bucket.startswith("other:"):
            return self.policy.other
        return next(g for g in self.policy.groups if g.name == bucket)

    def concurrency(self, bucket: str) -> int:
        return self._limits(bucket).concurrency


class _Row(Protocol):
    @property
    def send_id(self) -> int: ...
    @property
    def email(self) -> str: ...


R = TypeVar("R", bound=_Row)


def admit_chunk(
    throttle: Throttle, chunk: Sequence[R], sender_domain: str = ""
) -> tuple[list[R], list[R], float]:
    """Split a chunk into the rows the throttle admits now and those it holds back (in send order),
    with the seconds until it could admit more."""
    by_bucket: dict[str, list[R]] = {}
    for row in chunk:
        by_bucket.setdefault(throttle.policy.group_of(row.email)[0], []).append(row)
    admission = throttle.admit({b: len(rows) for b, rows in by_bucket.items()}, sender_domain=sender_domain)
    admitted: list[R] = []
    held: list[R] = []
    for bucket, rows in by_bucket.items():
        n = admission.granted.get(bucket, 0)
        admitted += rows[:n]
        held += rows[n:]
    admitted.sort(key=lambda r: r.send_id)
    return admitted, held, admission.wait_seconds
