"""The throttle's policy: domain groups with their rate, burst and concurrency, the platform-wide
hourly cap and the warm-up plan, parsed and validated from `MAILRAMP_THROTTLE` (README,
Deliverability). `campaigns.sending.throttling` applies it through Redis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from campaigns.errors import InputError

DEFERRAL_CODES = frozenset({421, 450, 451, 452, 552})
# What a refusal is about. 421 (and connection trouble) is the server's: the whole receiving domain
# group slows down. The others name one mailbox (full, over quota, greylisted, busy): only that
# recipient waits, with its own backoff, and the domain's other recipients go on.
DOMAIN_DEFERRAL_CODES = frozenset({421})
RECIPIENT_DEFERRAL_CODES = frozenset({450, 451, 452, 552})


def permanent(code: int) -> bool:
    """A reply that refuses for good: a 5xx, but 552 (mailbox full: a recipient's deferral)."""
    return 500 <= code < 600 and code not in RECIPIENT_DEFERRAL_CODES


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
    recipient_retry_seconds: float = 60.0  # a recipient's deferral: its own wait, doubling per attempt
    _by_domain: dict[str, DomainGroup] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            for domain in group.domains:
                self._by_domain[domain] = group

    def recipient_backoff(self, attempts: int) -> float:
        """Seconds a deferred recipient waits after its `attempts`-th try (1: the first)."""
        return min(self.max_pause_seconds, self.recipient_retry_seconds * 2 ** max(0, attempts - 1))

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
            recipient_retry_seconds=_number(raw, "recipient_retry_seconds", float, 60.0),
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
_parsed: dict[str, ThrottlePolicy | None] = {}


def throttle_policy(settings: Any) -> ThrottlePolicy | None:
    """The policy of `settings.throttle` (None: the defaults; {"enabled": false}: off), parsed once."""
    raw = settings.throttle
    key = json.dumps(raw, sort_keys=True, default=str)
    if key not in _parsed:
        _parsed[key] = ThrottlePolicy.from_mapping(raw)
    return _parsed[key]
