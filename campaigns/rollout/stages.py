"""Stage plans (pure): the rings a rollout goes through and the gates stored on each stage.

A plan is a list of stages stored as JSON on `models.Rollout.stages`::

    {"name": "5%", "kind": "percent", "exposure_bp": 500,
     "unprotect_segments": [],
     "gates": {"min_recipients_per_arm": 1000, "min_events": 50, "min_duration_hours": 24,
               "primary_metric": "conversion_rate", "guardrails": ["unsubscribe_rate", ...]}}

Stage kinds, in ring order (a plan never goes back to an earlier kind):

- ``shadow``: nobody receives AI content; it is computed and stored for the would-be treatment share
  (``exposure_bp``) so reports can compare it with what was sent.
- ``dark``: a dark launch; like shadow, but only latency and errors are kept (0% exposure).
- ``internal``: the allow-list (named contacts) receives AI content.
- ``beta``: the allow-list and the opt-in beta group.
- ``percent``: the allow-list, the beta group and ``exposure_bp`` of all eligible contacts by bucket.

Exposure never decreases along a plan (lowering exposure is a rollback, an explicit action), so every
advance only adds contacts. `unprotect_segments` releases protected segments from that stage on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns.errors import InputError

BASIS_POINTS = 10_000
STAGE_KINDS = ("shadow", "dark", "internal", "beta", "percent")
SHADOW_KINDS = frozenset({"shadow", "dark"})
_RING = {kind: rank for rank, kind in enumerate(STAGE_KINDS)}
_RING["dark"] = _RING["shadow"]
_METRIC = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Gates:
    """What must be true before a stage may be left by an advance. `None` metric: the rollout's."""

    min_recipients_per_arm: int = 0
    min_events: int = 0
    min_duration_hours: float = 0.0
    primary_metric: str | None = None
    guardrails: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "min_recipients_per_arm": self.min_recipients_per_arm,
            "min_events": self.min_events,
            "min_duration_hours": self.min_duration_hours,
            "primary_metric": self.primary_metric,
            "guardrails": None if self.guardrails is None else list(self.guardrails),
        }


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    exposure_bp: int
    gates: Gates = field(default_factory=Gates)
    unprotect_segments: tuple[int, ...] = ()

    @property
    def is_shadow(self) -> bool:
        return self.kind in SHADOW_KINDS

    @property
    def ring(self) -> int:
        return _RING[self.kind]

    @property
    def exposes_allow_list(self) -> bool:
        return self.ring >= _RING["internal"]

    @property
    def exposes_beta(self) -> bool:
        return self.ring >= _RING["beta"]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "exposure_bp": self.exposure_bp,
            "unprotect_segments": list(self.unprotect_segments),
            "gates": self.gates.to_json(),
        }


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InputError(f"must be a whole number, got {value!r}", where=where)
    if not low <= int(value) <= high:
        raise InputError(f"must be between {low} and {high}, got {value}", where=where)
    return int(value)


def metric_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _METRIC.match(value):
        raise InputError(f"must be a metric name such as 'conversion_rate', got {value!r}", where=where)
    return value


def parse_gates(raw: Any, where: str) -> Gates:
    if raw is None:
        return Gates()
    if not isinstance(raw, Mapping):
        raise InputError("must be an object", where=where)
    unknown = set(raw) - set(Gates.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown gate(s): {', '.join(sorted(unknown))}", where=where)
    hours = raw.get("min_duration_hours", 0) or 0
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 24 * 365:
        raise InputError(
            f"must be a number of hours >= 0, got {hours!r}", where=f"{where}.min_duration_hours"
        )
    metric = raw.get("primary_metric")
    guardrails = raw.get("guardrails")
    if guardrails is not None and not isinstance(guardrails, list | tuple):
        raise InputError("must be a list of metric names", where=f"{where}.guardrails")
    return Gates(
        min_recipients_per_arm=_int(
            raw.get("min_recipients_per_arm", 0) or 0, f"{where}.min_recipients_per_arm", 0, 10**9
        ),
        min_events=_int(raw.get("min_events", 0) or 0, f"{where}.min_events", 0, 10**9),
        min_duration_hours=float(hours),
        primary_metric=None if metric is None else metric_name(metric, f"{where}.primary_metric"),
        guardrails=None
        if guardrails is None
        else tuple(metric_name(g, f"{where}.guardrails[{i}]") for i, g in enumerate(guardrails)),
    )


def parse_stage(raw: Any, where: str) -> Stage:
    if not isinstance(raw, Mapping):
        raise InputError("must be an object", where=where)
    kind = raw.get("kind", "percent")
    if kind not in STAGE_KINDS:
        raise InputError(f"kind must be one of {', '.join(STAGE_KINDS)}, got {kind!r}", where=f"{where}.kind")
    exposure = _int(raw.get("exposure_bp", 0), f"{where}.exposure_bp", 0, BASIS_POINTS)
    name = raw.get("name") or (f"{exposure / 100:g}%" if kind == "percent" else kind)
    if not isinstance(name, str) or len(name) > 60:
        raise InputError("must be a short text", where=f"{where}.name")
    unprotect = raw.get("unprotect_segments") or []
    if not isinstance(unprotect, list | tuple):
        raise InputError("must be a list of segment ids", where=f"{where}.unprotect_segments")
    return Stage(
        name=name,
        kind=kind,
        exposure_bp=exposure,
        gates=parse_gates(raw.get("gates"), f"{where}.gates"),
        unprotect_segments=tuple(
            _int(s, f"{where}.unprotect_segments[{i}]", 1, 2**63 - 1) for i, s in enumerate(unprotect)
        ),
    )


def parse_plan(raw: Any, where: str = "stages") -> tuple[Stage, ...]:
    """Validate a plan: known kinds in ring order, exposure never decreasing, at least one stage."""
    if not isinstance(raw, list | tuple) or not raw:
        raise InputError("must be a non-empty list of stages", where=where)
    stages = tuple(parse_stage(s, f"{where}[{i}]") for i, s in enumerate(raw))
    for i in range(1, len(stages)):
        before, after = stages[i - 1], stages[i]
        if after.ring < before.ring:
            raise InputError(
                f"a {after.kind} stage cannot follow a {before.kind} stage (rings only widen)",
                where=f"{where}[{i}].kind",
            )
        if not after.is_shadow and not before.is_shadow and after.exposure_bp < before.exposure_bp:
            raise InputError(
                f"exposure must not decrease along the plan ({before.exposure_bp} -> {after.exposure_bp});"
                " lowering exposure is a rollback",
                where=f"{where}[{i}].exposure_bp",
            )
    return stages


def plan_to_json(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    return [s.to_json() for s in stages]


def default_plan() -> list[dict[str, Any]]:
    """shadow -> internal -> beta -> 1% -> 5% -> 10% -> 25% -> 50% -> 100%."""
    gates = {"min_recipients_per_arm": 500, "min_events": 30, "min_duration_hours": 24}
    plan: list[dict[str, Any]] = [
        {"name": "shadow", "kind": "shadow", "exposure_bp": 1000, "gates": {"min_recipients_per_arm": 0}},
        {"name": "internal", "kind": "internal", "exposure_bp": 0, "gates": {}},
        {"name": "beta", "kind": "beta", "exposure_bp": 0, "gates": {"min_duration_hours": 24}},
    ]
    for bp in (100, 500, 1000, 2500, 5000, 10_000):
        plan.append({"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp, "gates": dict(gates)})
    return plan_to_json(parse_plan(plan))


def released_segments(stages: Sequence[Stage], upto: int) -> frozenset[int]:
    """Protected segments released by stages 0..upto (inclusive): releases are cumulative."""
    out: set[int] = set()
    for stage in stages[: upto + 1]:
        out.update(stage.unprotect_segments)
    return frozenset(out)
