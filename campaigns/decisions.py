"""What an evaluation concludes (pure): hold, advance, rollback or pause, with the evidence.

`decide(snapshot)` takes the per-arm aggregates of a rollout and returns a `Verdict`. Nothing here
reads a database: `campaigns.evaluation` builds the snapshot from `ArmMetric` rows and applies the
verdict; the benchmark builds snapshots from simulated streams and calls the same function.

The order of checks, first match wins:

1. The rollout is not live (not shadow or ramping, or killed): **hold**, nothing to decide.
2. **Stale data**: recipients were sent after the last tracking event and no event arrived for
   ``stale_after_hours``: tracking or ingest is broken, so **pause**.
3. **Sample-ratio mismatch** in the current randomized stage (chi-square p < 0.001 on treatment,
   control and holdout recipients against the bucket ranges): **pause**. It blocks every decision.
4. **Too few recipients**: fewer than ``min_samples_per_arm`` randomized recipients in treatment or
   in the comparison arms: **hold**. No data never promotes.
5. **Caps**: a guardrail rate of treatment significantly above its absolute cap (exact
   always-valid binomial test against the cap), or the treatment's render p95 above its cap:
   **rollback**.
6. **Guardrails**: treatment's rate significantly higher than comparison's (exact always-valid
   rate-ratio test, `campaigns.stats.rates`, at ``guardrail_alpha``): **rollback**.
7. **Primary metric** significantly worse (two-sided confidence sequence at ``alpha``): **rollback**.
8. **Gates** of the stage not met (recipients per arm, events, time in stage): **hold**.
9. ``advance_when == "better"`` and the primary metric is not significantly better: **hold**.
10. Otherwise **advance** (from the last stage: complete).

Comparison arms are ``control`` and ``holdout`` together (both get control content by bucket);
``forced`` treatment (allow-list, beta group) is never compared: it is not randomized. Statistics use
the randomized (percent) stages so far, stratified by stage. Shadow, dark, internal and beta stages
are not randomized: only staleness, caps and gates apply there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from campaigns.metrics import RENDER_BUCKETS, RENDER_EDGES_MS
from campaigns.policy import LATENCY_GUARDRAIL, METRIC_DEFS, DecisionConfig, MetricDef
from campaigns.rollout.gates import GateObservation, unmet_gates
from campaigns.rollout.stages import BASIS_POINTS, Stage
from campaigns.stats import Arms, cap_test, compare, histogram_quantile, rate_ratio_test, srm_test

Triple = tuple[float, float, float]  # count, total, total_sq
StageArms = Mapping[str, Mapping[str, Triple]]  # arm -> metric -> sums
RANDOMIZED_ARMS = ("treatment", "control", "holdout")
COMPARISON_ARMS = ("control", "holdout")
GATE_EVENTS = ("open", "click", "conversion")
LIVE_STATES = ("shadow", "ramping")
_ZERO: Triple = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Snapshot:
    rollout_id: int
    state: str
    killed: bool
    stage_index: int
    stages: tuple[Stage, ...]
    holdout_bp: int
    config: DecisionConfig
    data: Mapping[int, StageArms]  # stage index -> arm -> metric -> (count, total, total_sq)
    now: datetime
    stage_started_at: datetime | None = None
    last_send_at: datetime | None = None
    last_event_at: datetime | None = None
    first_send_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: str  # hold | advance | rollback | pause
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


def _sum(arms: StageArms, arm_names: tuple[str, ...], metric: str) -> Triple:
    c = t = q = 0.0
    for arm in arm_names:
        a, b, s = arms.get(arm, {}).get(metric, _ZERO)
        c, t, q = c + a, t + b, q + s
    return c, t, q


def _recipients(arms: StageArms, arm_names: tuple[str, ...], metric: MetricDef) -> float:
    return sum(_sum(arms, arm_names, d)[0] for d in metric.denominators)


def _arms_of(snapshot: Snapshot, metric: MetricDef, arm_names: tuple[str, ...]) -> Arms:
    n, total, sq = [], [], []
    for index in _randomized_stages(snapshot):
        arms = snapshot.data.get(index, {})
        _, t, q = _sum(arms, arm_names, metric.numerator)
        n.append(_recipients(arms, arm_names, metric))
        total.append(t)
        sq.append(q)
    return Arms(tuple(n), tuple(total), tuple(sq))


def _randomized_stages(snapshot: Snapshot) -> list[int]:
    last = min(snapshot.stage_index, len(snapshot.stages) - 1)
    return [i for i in range(last + 1) if snapshot.stages[i].kind == "percent"]


def _render_p95(snapshot: Snapshot, arm_names: tuple[str, ...]) -> tuple[float | None, float]:
    counts = [0.0] * len(RENDER_BUCKETS)
    for arms in snapshot.data.values():
        for i, name in enumerate(RENDER_BUCKETS):
            counts[i] += _sum(arms, arm_names, name)[0]
    return histogram_quantile(RENDER_EDGES_MS, counts, 0.95), sum(counts)


def _stale(snapshot: Snapshot, hours: float) -> str | None:
    if snapshot.last_send_at is None:
        return None
    reference = snapshot.last_event_at or snapshot.first_send_at
    if reference is None or snapshot.last_send_at <= reference:
        return None
    quiet = snapshot.now - reference
    if quiet <= timedelta(hours=hours):
        return None
    return (
        f"stale data: recipients were sent until {snapshot.last_send_at.isoformat()} but no tracking event "
        f"arrived for {quiet.total_seconds() / 3600:.1f} h (limit {hours:g} h): tracking or ingest is down"
    )


def gate_observation(snapshot: Snapshot) -> GateObservation:
    """What the current stage gathered, from the aggregates, in the state machine's terms: ``treatment``
    is everyone who received AI content (forced included), ``control`` the comparison arms (control and
    holdout: at 100% exposure only the holdout is left), ``events`` the recipients with a human open,
    click or conversion. `transition` re-checks the gates against it instead of scanning events."""
    arms = snapshot.data.get(snapshot.stage_index, {})
    recipients = {
        "treatment": int(_sum(arms, ("treatment", "forced"), "sent")[0]),
        "control": int(_sum(arms, COMPARISON_ARMS, "sent")[0]),
    }
    events = sum(_sum(arms, tuple(arms), m)[0] for m in GATE_EVENTS)
    return GateObservation(
        recipients_per_arm=recipients, events=int(events), stage_started_at=snapshot.stage_started_at
    )


def decide(snapshot: Snapshot) -> Verdict:
    """The decision for this snapshot; see the module docstring for the order of checks."""
    cfg, policy = snapshot.config, snapshot.config.policy
    evidence: dict[str, Any] = {"config": cfg.to_json(), "stage_index": snapshot.stage_index}
    if snapshot.state not in LIVE_STATES or snapshot.killed:
        why = "killed" if snapshot.killed else snapshot.state
        return Verdict("hold", (f"the rollout is {why}: nothing to decide",), evidence)
    if not 0 <= snapshot.stage_index < len(snapshot.stages):
        return Verdict("hold", (f"stage {snapshot.stage_index} is not in the plan",), evidence)
    stage = snapshot.stages[snapshot.stage_index]
    evidence["stage"] = stage.to_json()

    stale = _stale(snapshot, policy.stale_after_hours)
    evidence["freshness"] = {
        "last_send_at": snapshot.last_send_at.isoformat() if snapshot.last_send_at else None,
        "last_event_at": snapshot.last_event_at.isoformat() if snapshot.last_event_at else None,
    }
    if stale:
        return Verdict("pause", (stale,), evidence, ("stale",))

    current = snapshot.data.get(snapshot.stage_index, {})
    randomized = stage.kind == "percent"
    if randomized:
        shares = expected_shares(stage.exposure_bp, snapshot.holdout_bp)
        observed = [
            _sum(current, (arm,), "sent")[0] + _sum(current, (arm,), "failed")[0] for arm in RANDOMIZED_ARMS
        ]
        srm = srm_test(observed, [shares[a] for a in RANDOMIZED_ARMS])
        evidence["srm"] = {**srm.to_json(), "arms": list(RANDOMIZED_ARMS)}
        if srm.mismatch:
            return Verdict(
                "pause",
                (
                    f"sample-ratio mismatch: recipients {dict(zip(RANDOMIZED_ARMS, observed, strict=True))} "
                    f"against expected shares {shares} (chi-square p = {srm.p_value:.2g} < {srm.threshold:g})",
                ),
                evidence,
                ("srm",),
            )

    reasons: list[str] = []
    health: list[str] = []
    primary_def = (
        METRIC_DEFS[stage.gates.primary_metric or cfg.primary_metric]
        if ((stage.gates.primary_metric or cfg.primary_metric) in METRIC_DEFS)
        else METRIC_DEFS[cfg.primary_metric]
    )
    guardrails = cfg.active(stage.gates.guardrails)
    rollback: list[str] = []

    # caps: on the treatment that received AI content (randomized and forced alike)
    treated = ("treatment", "forced")
    caps: dict[str, Any] = {}
    for rail in guardrails:
        if rail.cap is None:
            continue
        if rail.name == LATENCY_GUARDRAIL:
            p95, n_renders = _render_p95(snapshot, treated)
            broken = p95 is not None and n_renders >= policy.min_samples_per_arm and p95 > rail.cap
            caps[rail.name] = {"p95_ms": p95, "renders": n_renders, "cap": rail.cap, "broken": broken}
            if broken:
                rollback.append(f"render p95 of AI content is {p95:g} ms, above the cap of {rail.cap:g} ms")
                health.append(f"cap:{rail.name}")
            continue
        metric = METRIC_DEFS[rail.name]
        n = sum(_recipients(snapshot.data.get(i, {}), treated, metric) for i in snapshot.data)
        events = sum(_sum(snapshot.data.get(i, {}), treated, metric.numerator)[1] for i in snapshot.data)
        check = cap_test(events, n, rail.cap, alpha=policy.guardrail_alpha)
        caps[rail.name] = {**check.to_json(), "cap": rail.cap}
        if check.worse:
            rollback.append(
                f"{rail.name} of treatment is {check.rate_treatment:.4%}, significantly above its cap of {rail.cap:.4%}"
            )
            health.append(f"cap:{rail.name}")
    evidence["caps"] = caps

    if randomized or _randomized_stages(snapshot):
        n_t = _recipients_all(snapshot, ("treatment",))
        n_c = _recipients_all(snapshot, COMPARISON_ARMS)
        evidence["recipients"] = {"treatment": n_t, "comparison": n_c}
        if min(n_t, n_c) < policy.min_samples_per_arm and not rollback:
            return Verdict(
                "hold",
                (f"not enough data: {n_t:g} treatment and {n_c:g} comparison recipients, "
                 f"at least {policy.min_samples_per_arm} each are needed",),
                evidence,
            )  # fmt: skip
        comparisons: dict[str, Any] = {}
        for rail in guardrails:
            if rail.name == LATENCY_GUARDRAIL:
                continue
            metric = METRIC_DEFS[rail.name]
            t_arms = _arms_of(snapshot, metric, ("treatment",))
            c_arms = _arms_of(snapshot, metric, COMPARISON_ARMS)
            test = rate_ratio_test(
                t_arms.total, t_arms.n, c_arms.total, c_arms.n, alpha=policy.guardrail_alpha
            )
            interval = compare(
                t_arms, c_arms, binary=True, alpha=policy.guardrail_alpha, tuning_n=policy.tuning_n
            )
            comparisons[rail.name] = {**test.to_json(), "difference": interval.to_json()}
            if test.worse:
                rollback.append(
                    f"{rail.name} is significantly worse: {test.rate_treatment:.4%} in treatment against "
                    f"{test.rate_control:.4%} in comparison (rate ratio {test.rate_ratio or 0:.2f})"
                )
                health.append(f"guardrail:{rail.name}")
        evidence["guardrails"] = comparisons
        primary = compare(
            _arms_of(snapshot, primary_def, ("treatment",)),
            _arms_of(snapshot, primary_def, COMPARISON_ARMS),
            binary=primary_def.binary,
            alpha=policy.alpha,
            tuning_n=policy.tuning_n,
        )
        evidence["primary"] = {"metric": primary_def.name, **primary.to_json(),
                               "better": primary.increased, "worse": primary.decreased}  # fmt: skip
        worse, better = (
            (primary.decreased, primary.increased)
            if primary_def.higher_is_better
            else (primary.increased, primary.decreased)
        )
        if worse:
            rollback.append(
                f"{primary_def.name} is significantly worse: lift {_pct(primary.lift)} "
                f"[{_pct(primary.lift_low)}, {_pct(primary.lift_high)}]"
            )
    else:
        better = False
    if rollback:
        return Verdict("rollback", tuple(rollback), evidence, tuple(health))

    if (
        _recipients_all(snapshot, ("treatment", "forced", "control", "holdout"), upto=snapshot.stage_index)
        <= 0
    ):
        return Verdict("hold", ("no recipients in this stage yet: no data never promotes",), evidence)
    observation = gate_observation(snapshot)
    arms = (
        ("treatment", "control")
        if randomized
        else (("treatment",) if stage.exposes_allow_list else ("control",))
    )
    unmet = unmet_gates(stage.gates, observation, snapshot.now, arms=arms)
    evidence["gates"] = {"observed": observation.to_json(), "unmet": unmet}
    if unmet:
        reasons.append("gates not met: " + "; ".join(unmet))
        return Verdict("hold", tuple(reasons), evidence)
    if randomized and policy.advance_when == "better" and not better:
        return Verdict(
            "hold",
            (f"{primary_def.name} is not significantly better yet (policy: advance when better)",),
            evidence,
        )
    last = snapshot.stage_index + 1 >= len(snapshot.stages)
    if randomized:
        reasons.append(
            f"{primary_def.name} is " + ("significantly better" if better else "not significantly worse")
        )
    reasons.append(
        "gates met: "
        + ("completing the rollout" if last else f"advancing to stage {snapshot.stage_index + 1}")
    )
    return Verdict("advance", tuple(reasons), evidence)


def _recipients_all(snapshot: Snapshot, arm_names: tuple[str, ...], upto: int | None = None) -> float:
    if upto is not None:
        return _sum(snapshot.data.get(upto, {}), arm_names, "sent")[0]
    return sum(_sum(snapshot.data.get(i, {}), arm_names, "sent")[0] for i in _randomized_stages(snapshot))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"
