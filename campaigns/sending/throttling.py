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

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from redis import Redis

from campaigns.errors import InputError

PREFIX = "mailramp:throttle"
DEFERRAL_CODES = frozenset({421, 450, 451, 452})


@dataclass(frozen=True)
class DomainGroup:
    name: str
    domains: tuple[str, ...] = ()
    rate_per_second: float = 10.0
    burst: int = 20
    concurrency: int = 4


DEFAULT_GROUPS = (
    DomainGroup("gmail", ("gmail.com", "googlemail.com"), 20.0, 40, 4),
    DomainGroup(
        "microsoft",
        ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "outlook.fr", "live.co.uk"),
        10.0,
        20,
        2,
    ),
    DomainGroup(
        "yahoo",
        ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk", "yahoo.fr"),
        10.0,
        20,
        2,
    ),
    DomainGroup("apple", ("icloud.com", "me.com", "mac.com"), 10.0, 20, 2),
)
DEFAULT_OTHER = DomainGroup("other", (), 100.0, 200, 4)


@dataclass(frozen=True)
class Warmup:
    start: date
    daily: tuple[int, ...]  # cap on day 0, 1, 2...; after the last day, no cap

    def cap_on(self, day: date) -> int | None:
        index = (day - self.start).days
        if index < 0:
            return 0
        return self.daily[index] if index < len(self.daily) else None


@dataclass(frozen=True)
class ThrottlePolicy:
    groups: tuple[DomainGroup, ...] = DEFAULT_GROUPS
    other: DomainGroup = DEFAULT_OTHER
    hourly_cap: int | None = None
    # warm-up plans by sending (From) domain; "*" is the plan of every domain without its own
    warmups: Mapping[str, Warmup] = field(default_factory=dict)
    deferral_pause_seconds: float = 60.0
    max_pause_seconds: float = 1800.0
    slowest_factor: float = 0.25  # repeated deferrals lower a group's rate down to this share of it
    max_inline_wait_seconds: float = 30.0  # a batch waits this long for tokens, then is re-enqueued
    _by_domain: dict[str, DomainGroup] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            for domain in group.domains:
                self._by_domain[domain] = group

    def group_of(self, email: str) -> tuple[str, DomainGroup]:
        """(bucket name, limits) of a recipient: a listed group, else its own domain's bucket."""
        domain = email.rpartition("@")[2].lower()
        group = self._by_domain.get(domain)
        if group is not None:
            return group.name, group
        return f"other:{domain}", self.other

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ThrottlePolicy | None:
        """`THROTTLE` configuration; None or `{"enabled": false}` turns throttling off. Groups given by
        name replace the defaults' limits field by field; new names add groups."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InputError("must be an object", where="THROTTLE")
        if raw.get("enabled", True) is False:
            return None
        groups = {g.name: g for g in DEFAULT_GROUPS}
        for name, spec in (raw.get("groups") or {}).items():
            groups[name] = _group(groups.get(name, DomainGroup(name)), spec, f"THROTTLE.groups.{name}")
        other = _group(DEFAULT_OTHER, raw.get("other") or {}, "THROTTLE.other")
        spec = raw.get("warmup") or {}
        if not isinstance(spec, Mapping):
            raise InputError("must be an object", where="THROTTLE.warmup")
        plans = {"*": spec} if "start" in spec or "daily" in spec else dict(spec)
        warmups = {
            domain.lower(): _warmup(plan, f"THROTTLE.warmup.{domain}") for domain, plan in plans.items()
        }
        return cls(
            groups=tuple(groups.values()),
            other=other,
            hourly_cap=_number(raw, "hourly_cap", int, None),
            warmups=warmups,
            deferral_pause_seconds=_number(raw, "deferral_pause_seconds", float, 60.0),
            max_pause_seconds=_number(raw, "max_pause_seconds", float, 1800.0),
            slowest_factor=min(1.0, max(0.01, _number(raw, "slowest_factor", float, 0.25))),
            max_inline_wait_seconds=_number(raw, "max_inline_wait_seconds", float, 30.0),
        )


def _warmup(spec: Any, where: str) -> Warmup:
    try:
        return Warmup(date.fromisoformat(str(spec["start"])), tuple(int(n) for n in spec["daily"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError('needs {"start": "YYYY-MM-DD", "daily": [caps...]}', where=where) from exc


def _number(raw: Mapping[str, Any], key: str, kind: type, default: Any, where: str = "THROTTLE") -> Any:
    value = raw.get(key, default)
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be a number, not {value!r}", where=f"{where}.{key}") from exc
    if number < 0:
        raise InputError("must not be negative", where=f"{where}.{key}")
    return number


def _group(base: DomainGroup, spec: Mapping[str, Any], where: str) -> DomainGroup:
    if not isinstance(spec, Mapping):
        raise InputError("must be an object", where=where)
    domains = tuple(str(d).lower() for d in spec.get("domains", base.domains))
    rate = _number(spec, "rate_per_second", float, base.rate_per_second, where)
    burst = _number(spec, "burst", int, base.burst, where)
    concurrency = _number(spec, "concurrency", int, base.concurrency, where)
    if rate <= 0 or burst < 1 or concurrency < 1:
        raise InputError("rate_per_second > 0, burst >= 1 and concurrency >= 1 are needed", where=where)
    return replace(base, domains=domains, rate_per_second=rate, burst=burst, concurrency=concurrency)


# KEYS: hourly bucket, warm-up day counter, then per group: its bucket, pause key, slow-down key.
# ARGV: hourly cap (0: none), warm-up cap today (-1: none), seconds to UTC midnight, then per group:
# rate, burst, wanted. Returns per group {granted, wait_ms}, then the global wait in ms.
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


_parsed: dict[str, ThrottlePolicy | None] = {}


def throttle_policy(settings: Any) -> ThrottlePolicy | None:
    """The policy of `settings.throttle` (None: the defaults; {"enabled": false}: off), parsed once."""
    raw = settings.throttle
    key = json.dumps(raw, sort_keys=True, default=str)
    if key not in _parsed:
        _parsed[key] = ThrottlePolicy.from_mapping(raw)
    return _parsed[key]


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
