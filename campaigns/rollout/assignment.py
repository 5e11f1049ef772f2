"""Assignment (pure): which arm each contact is in, for a whole batch at once.

`spec_from_row(rollout)` turns a `models.Rollout` into a frozen `RolloutSpec` (the state, the current
stage and the targeting, already validated); `assign(spec, contacts)` maps a `ContactFrame` of numpy
columns to an `Assignment`. Nothing here touches a database: the send path, the OpenFeature provider
and the benchmark all call the same `assign`, so they cannot disagree.

Evaluation order (first match wins)
-----------------------------------
0. **Fail closed**: the rollout is killed or rolled back, or anything below raises (a missing segment
   mask or attribute column, a bad value): every contact is ``control``, nobody is shadow, and the
   error is logged and kept in `Assignment.failed`.
1. **Exclude segments**: a member of any is ``excluded``.
2. **Protected segments**: a member of any protected segment that no stage reached so far has released
   (`unprotect_segments`) is ``excluded``.
3. **Allow-list** (stages of kind internal, beta, percent, and completed): ``treatment``, marked
   `forced` (not randomized: statistics leave forced contacts out).
4. **Beta group** (kinds beta, percent, and completed): ``treatment``, `forced`.
5. **Targeting**: not in any include segment (when some are given) or failing any attribute rule:
   ``excluded``.
6. **Holdout**: ``bucket >= 10_000 - holdout_bp``: ``holdout`` (permanent control; the range is fixed,
   so it never changes with exposure).
7. **Exposure**: ``bucket < exposure_bp``: ``treatment``; otherwise ``control``.
8. **Shadow**: a ``control`` contact with ``bucket < shadow_bp`` (shadow and dark stages only) is
   `shadow`: the send path computes its AI content (and, for shadow, stores it) but sends control.

Exposure is a share of all eligible contacts: buckets are uniform and independent of eligibility, so
``exposure_bp / 10_000`` of them are treatment and ``holdout_bp / 10_000`` holdout. "100%" means every
non-holdout bucket (exposure is capped at ``10_000 - holdout_bp``). Raising exposure turns
``control`` contacts with buckets in ``[old, new)`` into ``treatment`` and nothing else; lowering it
removes the highest buckets, which are the most recently added. Two rollouts with different salts
hash independently.

States: ``draft`` and ``rolled_back`` expose nobody (steps 3, 4, 7, 8 are off; ``rolled_back`` also
fails closed); ``shadow``, ``ramping`` and ``paused`` use the current stage (a pause holds exposure,
it does not remove it: that is what kill and rollback are for); ``completed`` keeps the last stage's
exposure (the campaign's cap; a plan ending below 100% stops there) and the holdout, with every
protected segment released by any stage.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from campaigns.rollout import bucketing
from campaigns.rollout.stages import BASIS_POINTS, SHADOW_KINDS, parse_plan, released_segments
from campaigns.rollout.targeting import Targeting, any_segment, evaluate_rule, parse_targeting

log = logging.getLogger("mailramp.rollout")

ARMS = ("treatment", "control", "holdout", "excluded")
TREATMENT, CONTROL, HOLDOUT, EXCLUDED = range(4)
_ARM_NAMES = np.array(ARMS)


@dataclass(frozen=True)
class RolloutSpec:
    """Everything assignment needs, frozen at the moment it was read from the database."""

    rollout_id: int
    salt: str
    state: str = "draft"
    stage_index: int = 0
    stage_name: str = ""
    stage_kind: str = ""  # shadow | dark | internal | beta | percent | "" (draft, completed, rolled back)
    exposure_bp: int = 0  # share of eligible contacts receiving AI content now
    shadow_bp: int = 0  # share whose AI content is computed but not sent (shadow and dark stages)
    holdout_bp: int = 0
    targeting: Targeting = field(default_factory=Targeting)
    released_segments: frozenset[int] = frozenset()
    allow_list_on: bool = False
    beta_on: bool = False
    killed: bool = False
    model_version_id: int | None = None
    failed: str = ""  # non-empty: the spec could not be built; assignment fails closed

    @property
    def fail_closed(self) -> bool:
        return self.killed or self.state == "rolled_back" or bool(self.failed)

    @property
    def dark_launch(self) -> bool:
        return self.stage_kind == "dark"


def closed_spec(rollout_id: int, salt: str, why: str) -> RolloutSpec:
    """A spec that sends control content to everyone: what a broken rollout row becomes."""
    return RolloutSpec(rollout_id=rollout_id, salt=salt, failed=why or "unknown error")


def spec_from_row(rollout: Any) -> RolloutSpec:
    """Build the spec from a `models.Rollout` (reads attributes only; raises InputError if invalid)."""
    stages = parse_plan(list(rollout.stages or []))
    targeting = parse_targeting(rollout.targeting or {})
    state, index = str(rollout.state), int(rollout.stage_index or 0)
    holdout = min(max(int(rollout.holdout_bp or 0), 0), BASIS_POINTS)
    base = {
        "rollout_id": int(rollout.id),
        "salt": str(rollout.salt),
        "state": state,
        "stage_index": index,
        "holdout_bp": holdout,
        "targeting": targeting,
        "killed": bool(rollout.killed),
        "model_version_id": rollout.model_version_id,
    }
    if state == "completed":  # the exposure the last stage reached (the campaign's cap), holdout kept
        last = stages[-1]
        return RolloutSpec(
            **base,
            stage_name="completed",
            exposure_bp=min(
                last.exposure_bp if last.kind == "percent" else BASIS_POINTS, BASIS_POINTS - holdout
            ),
            released_segments=released_segments(stages, len(stages) - 1),
            allow_list_on=True,
            beta_on=True,
        )
    if state in ("shadow", "ramping", "paused"):
        if not 0 <= index < len(stages):
            raise ValueError(f"stage_index {index} is outside the plan of {len(stages)} stages")
        stage = stages[index]
        shadow = stage.kind in SHADOW_KINDS
        return RolloutSpec(
            **base,
            stage_name=stage.name,
            stage_kind=stage.kind,
            exposure_bp=0 if shadow else min(stage.exposure_bp, BASIS_POINTS - holdout),
            shadow_bp=min(stage.exposure_bp, BASIS_POINTS - holdout) if shadow else 0,
            released_segments=released_segments(stages, index),
            allow_list_on=stage.exposes_allow_list,
            beta_on=stage.exposes_beta,
        )
    return RolloutSpec(**base)  # draft, rolled_back: nobody exposed


@dataclass(frozen=True)
class ContactFrame:
    """A batch of contacts as columns. Attribute columns may be typed numpy arrays or object arrays
    (missing values None); give the columns `required_attributes(spec)` names and the segment masks
    `required_segment_ids(spec)` lists."""

    ids: npt.NDArray[np.int64]
    attributes: Mapping[str, np.ndarray] = field(default_factory=dict)
    country: np.ndarray | None = None
    segments: Mapping[int, npt.NDArray[np.bool_]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def column(self, name: str) -> np.ndarray:
        if name == "country" and self.country is not None:
            return self.country
        return self.attributes[name]

    @classmethod
    def from_records(
        cls,
        ids: Sequence[int] | np.ndarray,
        attributes: Sequence[Mapping[str, Any] | None] = (),
        countries: Sequence[str | None] | None = None,
        segments: Mapping[int, np.ndarray] | None = None,
        names: Iterable[str] | None = None,
    ) -> ContactFrame:
        """Columns from per-contact attribute dicts (only `names`, or every key seen)."""
        records = list(attributes) or [None] * len(ids)
        if len(records) != len(ids):
            raise ValueError(f"{len(records)} attribute records for {len(ids)} contacts")
        wanted = set(names) if names is not None else {k for r in records if r for k in r}
        columns: dict[str, np.ndarray] = {}
        for name in wanted:
            column = np.empty(len(records), dtype=object)
            column[:] = [(r or {}).get(name) for r in records]
            columns[name] = column
        country = None
        if countries is not None:
            country = np.empty(len(countries), dtype=object)
            country[:] = list(countries)
        return cls(
            ids=np.asarray(ids, dtype=np.int64),
            attributes=columns,
            country=country,
            segments=dict(segments or {}),
        )


@dataclass(frozen=True)
class Assignment:
    arms: np.ndarray  # strings: treatment | control | holdout | excluded
    buckets: npt.NDArray[np.int32]  # -1 where the bucket could not be computed
    shadow: npt.NDArray[np.bool_]  # would be treatment; receives control; AI content computed
    forced: npt.NDArray[np.bool_]  # treatment by allow-list or beta group, not by bucket
    failed: str = ""  # the error this batch failed closed on, "" when it did not

    def counts(self) -> dict[str, int]:
        names, counts = np.unique(self.arms, return_counts=True)
        return {arm: 0 for arm in ARMS} | {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def required_attributes(spec: RolloutSpec) -> set[str]:
    return spec.targeting.attribute_names()


def _everyone_control(n: int, found: npt.NDArray[np.int32] | None, why: str) -> Assignment:
    return Assignment(
        arms=np.full(n, "control", dtype=_ARM_NAMES.dtype),
        buckets=found if found is not None else np.full(n, -1, dtype=np.int32),
        shadow=np.zeros(n, dtype=bool),
        forced=np.zeros(n, dtype=bool),
        failed=why,
    )


def _codes(spec: RolloutSpec, contacts: ContactFrame, found: npt.NDArray[np.int32]) -> tuple[np.ndarray, Any]:
    n, t = len(contacts), spec.targeting
    codes = np.full(n, CONTROL, dtype=np.int8)
    # 6-7: holdout, exposure (on every contact; steps 1-5 overwrite)
    exposure = min(spec.exposure_bp, BASIS_POINTS - spec.holdout_bp)
    if exposure > 0:
        codes[found < exposure] = TREATMENT
    if spec.holdout_bp > 0:
        codes[found >= BASIS_POINTS - spec.holdout_bp] = HOLDOUT
    # 5: targeting
    eligible = np.ones(n, dtype=bool)
    if t.include_segments:
        eligible &= any_segment(contacts.segments, t.include_segments, n)
    for rule in t.rules:
        eligible &= evaluate_rule(rule, contacts.column(rule.attribute))
    codes[~eligible] = EXCLUDED
    # 4, 3: the forced rings
    forced = np.zeros(n, dtype=bool)
    if spec.beta_on and (t.beta is not None or t.beta_segment is not None):
        if t.beta is not None:
            forced |= evaluate_rule(t.beta, contacts.column(t.beta.attribute))
        if t.beta_segment is not None:
            forced |= any_segment(contacts.segments, (t.beta_segment,), n)
    if spec.allow_list_on and t.allow_list:
        forced |= np.isin(contacts.ids, np.array(t.allow_list, dtype=np.int64))
    codes[forced] = TREATMENT
    # 2, 1: protected and excluded segments win over everything
    blocked = np.zeros(n, dtype=bool)
    protected = [s for s in t.protected_segments if s not in spec.released_segments]
    if protected:
        blocked |= any_segment(contacts.segments, protected, n)
    if t.exclude_segments:
        blocked |= any_segment(contacts.segments, t.exclude_segments, n)
    codes[blocked] = EXCLUDED
    return codes, forced & ~blocked


def assign(spec: RolloutSpec, contacts: ContactFrame) -> Assignment:
    """Arms for a batch, in the documented order; never raises (fails closed to control)."""
    n = len(contacts)
    found: npt.NDArray[np.int32] | None = None
    try:
        found = bucketing.buckets(spec.salt, contacts.ids)
        if spec.fail_closed:
            return _everyone_control(n, found, spec.failed)
        codes, forced = _codes(spec, contacts, found)
        shadow = np.zeros(n, dtype=bool)
        if spec.shadow_bp > 0:
            shadow = (codes == CONTROL) & (found < spec.shadow_bp)
        return Assignment(arms=_ARM_NAMES[codes], buckets=found, shadow=shadow, forced=forced)
    except Exception as exc:  # fail closed: control content for everyone, and say why
        log.exception("rollout %s: assignment failed closed for %d contacts", spec.rollout_id, n)
        return _everyone_control(n, found, f"{type(exc).__name__}: {exc}")
