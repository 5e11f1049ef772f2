"""Decision policy and metric definitions (pure): what is measured, how strictly, what is a cap.

Stored on `models.Rollout.guardrails` as JSON; every key is optional::

    {"unsubscribe_rate": {"cap": 0.005},      # also tested "significantly worse" than control
     "complaint_rate": {"cap": 0.001},        # complaints at most 0.1%
     "bounce_rate": {},                       # tested, no cap
     "click_rate": {},                        # tested "significantly fewer clicks"; no cap
     "send_error_rate": {"enabled": false},   # switched off
     "render_p95_ms": {"cap": 800},           # cap only (AI content is expected to be slower)
     "policy": {"alpha": 0.05, "primary_share": 0.6, "benefit_alpha": 0.025, "smallest_effect": 0.1,
                "advance_when": "not_worse", "min_samples_per_arm": 200, "stale_after_hours": 24,
                "tuning_n": 20000, "srm_alpha": 0.001,
                "maturation_hours": {"conversion": 48}}}   # merged over MATURATION_HOURS

Guardrails not named keep their defaults: the five rates are tested, nothing is capped. The click
rate is the one guardrail where harm is a drop (a variant that costs clicks is rolled back even when
the primary metric is conversions); it has no cap, and it is left out when it is the primary metric. A bare
number is a cap (``{"complaint_rate": 0.001}``), ``null`` or ``false`` switches a guardrail off.

**Alpha is shared explicitly.** ``alpha`` is the whole budget for rolling back or pausing a rollout
that does no harm: ``primary_share`` of it goes to the primary metric's one-sided harm test, the
sample-ratio test's ``srm_alpha`` (a pause) comes out of the rest, and what remains is split evenly
between the enabled rate guardrails (``guardrail_alpha`` overrides each guardrail's share); so the
shares add up to ``alpha``, not ``alpha`` plus the SRM test's (the guardrails keep at least half of
their part when ``srm_alpha`` is set larger than it).
``benefit_alpha`` is the one-sided error of "significantly better".

**Maturation.** A recipient counts for a metric only once ``maturation_hours[event]`` have passed
since the send: a wave mailed a minute ago neither satisfies a gate nor dilutes a rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from campaigns.errors import InputError


@dataclass(frozen=True)
class MetricDef:
    """A per-recipient metric: numerator aggregate over a denominator of recipients."""

    name: str
    numerator: str  # ArmMetric.metric holding the outcome
    denominators: tuple[str, ...]  # summed ArmMetric counts giving the recipients
    binary: bool  # 0/1 per recipient (a rate) or a continuous value (revenue)
    higher_is_better: bool


METRIC_DEFS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef("conversion_rate", "conversion", ("sent",), True, True),
        MetricDef("click_rate", "click", ("sent",), True, True),
        MetricDef("open_rate", "open", ("sent",), True, True),
        MetricDef("revenue_per_recipient", "revenue", ("sent",), False, True),
        MetricDef("unsubscribe_rate", "unsubscribe", ("sent",), True, False),
        MetricDef("complaint_rate", "complaint", ("sent",), True, False),
        MetricDef("bounce_rate", "bounce", ("sent",), True, False),
        MetricDef("send_error_rate", "failed", ("sent", "failed"), True, False),
    )
}
PRIMARY_METRICS = ("conversion_rate", "click_rate", "open_rate", "revenue_per_recipient")
RATE_GUARDRAILS = ("unsubscribe_rate", "complaint_rate", "bounce_rate", "send_error_rate", "click_rate")
UNCAPPED = ("click_rate",)  # harm is a drop: a cap (an upper limit) means nothing
LATENCY_GUARDRAIL = "render_p95_ms"
GUARDRAILS = (*RATE_GUARDRAILS, LATENCY_GUARDRAIL)
ADVANCE_WHEN = ("not_worse", "better")
# Hours after the send before a recipient counts for a metric (its outcome had its chance to happen).
MATURATION_HOURS: dict[str, float] = {
    "open": 24.0,
    "click": 24.0,
    "conversion": 72.0,
    "revenue": 72.0,
    "unsubscribe": 72.0,
    "complaint": 72.0,
    "bounce": 24.0,
    "failed": 0.0,
}
# Harm signals that may act on immature data, in the direction of harm only.
FAST_HARM = ("unsubscribe", "complaint", "bounce", "failed")


@dataclass(frozen=True)
class Guardrail:
    name: str
    enabled: bool = True
    cap: float | None = None  # a rate in (0, 1), or milliseconds for render_p95_ms

    def alpha(self, share: float) -> float:
        """Each of this guardrail's tests' alpha from its share: a rate guardrail with a cap runs two
        tests (above the cap, worse than comparison), so each gets half of the share."""
        return share / 2 if self.cap is not None and self.name != LATENCY_GUARDRAIL else share


@dataclass(frozen=True)
class Policy:
    """How strict decisions are (see the module docstring). `tuning_n` is the number of recipients
    (both arms) at which the guardrails' difference intervals are narrowest."""

    alpha: float = 0.05
    guardrail_alpha: float | None = None  # None: (1 - primary_share) * alpha / enabled rate guardrails
    primary_share: float = 0.6
    benefit_alpha: float = 0.025
    smallest_effect: float = 0.10
    advance_when: str = "not_worse"  # or "better": the primary metric must be significantly better
    min_samples_per_arm: int = 200
    stale_after_hours: float = 24.0
    tuning_n: float = 20_000.0
    srm_alpha: float = 0.001
    maturation_hours: Mapping[str, float] = field(default_factory=lambda: dict(MATURATION_HOURS))

    @property
    def harm_alpha(self) -> float:
        return self.alpha * self.primary_share

    def rail_alpha(self, rate_guardrails: int = len(RATE_GUARDRAILS)) -> float:
        """Each rate guardrail's share: what the primary metric and the SRM test leave, split evenly."""
        if self.guardrail_alpha is not None:
            return self.guardrail_alpha
        rest = self.alpha * (1.0 - self.primary_share) - self.srm_alpha
        return max(rest, self.alpha * (1.0 - self.primary_share) / 2) / max(rate_guardrails, 1)

    def window(self, event: str) -> float:
        """Maturation hours of an event metric (0: known at send time)."""
        return float(self.maturation_hours.get(event, 0.0))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["maturation_hours"] = dict(self.maturation_hours)
        return out


@dataclass(frozen=True)
class DecisionConfig:
    primary_metric: str
    guardrails: tuple[Guardrail, ...]
    policy: Policy

    def active(self, names: tuple[str, ...] | None) -> tuple[Guardrail, ...]:
        """The enabled guardrails, restricted to a stage's list when it has one."""
        return tuple(g for g in self.guardrails if g.enabled and (names is None or g.name in names))

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    @cached_property
    def _json(self) -> dict[str, Any]:
        return {
            "primary_metric": self.primary_metric,
            "guardrails": [asdict(g) for g in self.guardrails],
            "policy": self.policy.to_json(),
        }


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise InputError(f"must be a number between {low:g} and {high:g}, got {value!r}", where=where)
    return float(value)


def _guardrail(name: str, raw: Any, where: str) -> Guardrail:
    if raw is None or raw is False:
        return Guardrail(name, enabled=False)
    if raw is True:
        return Guardrail(name)
    high = 1e7 if name == LATENCY_GUARDRAIL else 1.0
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if name in UNCAPPED:
            raise InputError(f"{name} has no cap: fewer clicks is the harm it tests", where=where)
        return Guardrail(name, cap=_number(raw, where, 0.0, high))
    if not isinstance(raw, Mapping):
        raise InputError('must be an object such as {"cap": 0.001}, a number (the cap) or null', where=where)
    unknown = set(raw) - {"cap", "enabled"}
    if unknown:
        raise InputError(f"unknown key(s): {', '.join(sorted(unknown))}", where=where)
    cap = raw.get("cap")
    if cap is not None and name in UNCAPPED:
        raise InputError(f"{name} has no cap: fewer clicks is the harm it tests", where=f"{where}.cap")
    return Guardrail(
        name,
        enabled=bool(raw.get("enabled", True)),
        cap=None if cap is None else _number(cap, f"{where}.cap", 0.0, high),
    )


def parse_policy(raw: Any, where: str = "guardrails.policy") -> Policy:
    if raw is None:
        return Policy()
    if not isinstance(raw, Mapping):
        raise InputError("must be an object", where=where)
    unknown = set(raw) - set(Policy.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown key(s): {', '.join(sorted(unknown))}", where=where)
    default = Policy()
    advance_when = raw.get("advance_when", default.advance_when)
    if advance_when not in ADVANCE_WHEN:
        raise InputError(f"must be one of {', '.join(ADVANCE_WHEN)}", where=f"{where}.advance_when")
    rail = raw.get("guardrail_alpha")
    maturation = raw.get("maturation_hours") or {}
    if not isinstance(maturation, Mapping):
        raise InputError('must be an object such as {"conversion": 72}', where=f"{where}.maturation_hours")
    unknown_events = set(maturation) - set(MATURATION_HOURS)
    if unknown_events:
        raise InputError(
            f"unknown event(s): {', '.join(sorted(unknown_events))}; known: {', '.join(MATURATION_HOURS)}",
            where=f"{where}.maturation_hours",
        )
    hours = {
        **MATURATION_HOURS,
        **{k: _number(v, f"{where}.maturation_hours.{k}", 0, 24 * 90) for k, v in maturation.items()},
    }
    return Policy(
        alpha=_number(raw.get("alpha", default.alpha), f"{where}.alpha", 1e-6, 0.5),
        guardrail_alpha=None if rail is None else _number(rail, f"{where}.guardrail_alpha", 1e-6, 0.5),
        primary_share=_number(
            raw.get("primary_share", default.primary_share), f"{where}.primary_share", 0.05, 1.0
        ),
        benefit_alpha=_number(
            raw.get("benefit_alpha", default.benefit_alpha), f"{where}.benefit_alpha", 1e-6, 0.5
        ),
        smallest_effect=_number(
            raw.get("smallest_effect", default.smallest_effect), f"{where}.smallest_effect", 0.005, 5.0
        ),
        srm_alpha=_number(raw.get("srm_alpha", default.srm_alpha), f"{where}.srm_alpha", 1e-9, 0.1),
        maturation_hours=hours,
        advance_when=advance_when,
        min_samples_per_arm=int(
            _number(
                raw.get("min_samples_per_arm", default.min_samples_per_arm),
                f"{where}.min_samples_per_arm",
                1,
                1e9,
            )
        ),
        stale_after_hours=_number(
            raw.get("stale_after_hours", default.stale_after_hours),
            f"{where}.stale_after_hours",
            0.1,
            24 * 365,
        ),
        tuning_n=_number(raw.get("tuning_n", default.tuning_n), f"{where}.tuning_n", 10, 1e10),
    )


def parse_config(primary_metric: str | None, guardrails: Mapping[str, Any] | None) -> DecisionConfig:
    """Validate a rollout's primary metric and guardrails JSON; InputError says what and where."""
    primary = primary_metric or "conversion_rate"
    if primary not in PRIMARY_METRICS:
        raise InputError(
            f"must be one of {', '.join(PRIMARY_METRICS)}, got {primary!r}", where="primary_metric"
        )
    raw = dict(guardrails or {})
    if not isinstance(guardrails or {}, Mapping):
        raise InputError("must be an object", where="guardrails")
    unknown = set(raw) - {*GUARDRAILS, "policy"}
    if unknown:
        raise InputError(
            f"unknown guardrail(s): {', '.join(sorted(unknown))}; known: {', '.join(GUARDRAILS)}",
            where="guardrails",
        )
    rails = tuple(
        _guardrail(name, raw[name], f"guardrails.{name}") if name in raw else Guardrail(name)
        for name in GUARDRAILS
    )
    return DecisionConfig(primary, rails, parse_policy(raw.get("policy")))
