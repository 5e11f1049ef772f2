"""The evidence an evaluation sees (pure data): per-stage, per-arm sums, matured per metric.

``data[stage][arm][metric] = (count, total, total_sq)`` holds every recipient and event so far, the
immature ones included. ``matured[hours][stage][arm][metric]`` holds the same sums restricted to
recipients sent at least ``hours`` ago (their send-time cohort has passed the window): the primary
metric, the gates and the lift use the view of their metric's window (`Evidence.view`); the fast harm
signals (unsubscribes, complaints, bounces, send errors) may read everything, in the harm direction
only. ``matured=None`` means "all of it has matured" (tests, the benchmark's oracle-free paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from campaigns.decisions.policy import DecisionConfig, MetricDef, Policy
from campaigns.rollout.stages import BASIS_POINTS, Stage

Triple = tuple[float, float, float]  # count, total, total_sq
StageArms = Mapping[str, Mapping[str, Triple]]  # arm -> metric -> sums
ByStage = Mapping[int, StageArms]
RANDOMIZED_ARMS = ("treatment", "control", "holdout")
COMPARISON_ARMS = ("control", "holdout")
LIVE_STATES = ("shadow", "ramping")
ZERO: Triple = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Evidence:
    data: ByStage
    matured: Mapping[float, ByStage] | None = None

    def view(self, event: str, policy: Policy) -> ByStage:
        """The sums a metric counted by ``event`` may use: matured for its window."""
        window = policy.window(event)
        if window <= 0 or self.matured is None:
            return self.data
        return self.matured.get(window, {})

    def minus(self, other: Evidence) -> Evidence:
        """These sums without another population's (the rest once a segment is set apart)."""
        matured = None
        if self.matured is not None:
            theirs = other.matured or {}
            matured = {w: _subtract(v, theirs.get(w, {})) for w, v in self.matured.items()}
        return Evidence(_subtract(self.data, other.data), matured)


def _subtract(a: ByStage, b: ByStage) -> dict[int, dict[str, dict[str, Triple]]]:
    out: dict[int, dict[str, dict[str, Triple]]] = {}
    for stage, arms in a.items():
        out[stage] = {}
        for arm, metrics in arms.items():
            theirs = b.get(stage, {}).get(arm, {})
            out[stage][arm] = {
                m: tuple(max(x - y, 0.0) for x, y in zip(v, theirs.get(m, ZERO), strict=True))  # type: ignore[misc]
                for m, v in metrics.items()
            }
    return out


@dataclass(frozen=True)
class Snapshot:
    rollout_id: int
    state: str
    killed: bool
    stage_index: int
    stages: tuple[Stage, ...]
    holdout_bp: int
    config: DecisionConfig
    data: ByStage  # every recipient so far, immature included
    now: datetime
    stage_started_at: datetime | None = None
    last_send_at: datetime | None = None
    last_event_at: datetime | None = None
    first_send_at: datetime | None = None
    # the first send after the last event (None: unknown, or nothing sent since): a weekly list is
    # quiet for days between sends, and its new send has had no time to bring events yet
    resumed_send_at: datetime | None = None
    matured: Mapping[float, ByStage] | None = None  # window hours -> sums of matured cohorts
    segments: Mapping[str, Evidence] = field(default_factory=dict)  # report segment -> its sums
    excluded_segments: tuple[str, ...] = ()  # report segments already set apart
    stage_last_send_at: datetime | None = None  # newest send-time cohort of the current stage
    manual: bool = False  # a one-stage or gate-less plan chosen explicitly
    # {"treatment_per_send": n at the current stage, "interval_hours": h, "every": "weekly"}: the
    # cadence a hold uses to say when it clears (None: unknown)
    cadence: Mapping[str, Any] | None = None
    # a completed rollout's sends since completion, one period (a day of send-time cohorts) each,
    # oldest first: (period start, arm -> metric -> sums); see campaigns.decisions.watch
    watched: tuple[tuple[datetime, StageArms], ...] = ()
    # distinct contacts per stage and arm, each counted once at its first send in the rollout
    # (`campaigns.decisions.srm_contacts`): the unit the sample-ratio test needs when a list is re-sent
    # (None: not counted; the test then uses the recipients per stage)
    srm_contacts: Mapping[int, Mapping[str, float]] | None = None

    @property
    def whole(self) -> Evidence:
        return Evidence(self.data, self.matured)

    def matures_at(self, event: str) -> datetime | None:
        """When the current stage's newest recipients have matured for this event."""
        if self.stage_last_send_at is None:
            return None
        return self.stage_last_send_at + timedelta(hours=self.config.policy.window(event))


@dataclass(frozen=True)
class Verdict:
    outcome: str  # hold | advance | rollback | pause | exclude_segment
    reasons: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    health: tuple[str, ...] = ()  # problems worth an alert: "srm", "stale", "cap:<name>", "guardrail:<name>"


def expected_shares(exposure_bp: int, holdout_bp: int) -> dict[str, float]:
    """Bucket ranges of a percent stage (see campaigns.rollout.assignment): holdout on top, then
    treatment below the exposure, control in between."""
    holdout = min(max(holdout_bp, 0), BASIS_POINTS)
    treatment = min(max(exposure_bp, 0), BASIS_POINTS - holdout)
    return {
        "treatment": float(treatment),
        "control": float(BASIS_POINTS - holdout - treatment),
        "holdout": float(holdout),
    }


def arm_sum(arms: StageArms, arm_names: tuple[str, ...], metric: str) -> Triple:
    c = t = q = 0.0
    for arm in arm_names:
        a, b, s = arms.get(arm, {}).get(metric, ZERO)
        c, t, q = c + a, t + b, q + s
    return c, t, q


def recipients(arms: StageArms, arm_names: tuple[str, ...], metric: MetricDef) -> float:
    return sum(arm_sum(arms, arm_names, d)[0] for d in metric.denominators)
