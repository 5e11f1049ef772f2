"""The decision for one snapshot: hold, advance, exclude a segment, roll back or pause.

The order of checks, first match wins:

1. The rollout is not live (not shadow or ramping, or killed): **hold**, nothing to decide; except a
   **completed** rollout, whose guardrails keep watching AI content against the holdout
   (`campaigns.decisions.watch`): a guardrail that fails since completion means **rollback**.
2. **Stale data**: recipients were sent after the last tracking event and no event arrived for
   ``stale_after_hours``: tracking or ingest is broken, so **pause**.
3. **Sample-ratio mismatch** (sequential Dirichlet-multinomial test over every randomized stage so
   far, `campaigns.stats.srm`): **pause**. It blocks every decision.
4. **Caps**: a guardrail rate of treatment significantly above its absolute cap, or the render p95
   above its cap: **rollback** (a capped rate guardrail splits its alpha between its two tests). Fast harm signals: on every recipient so far, immature included.
5. **Guardrails**: treatment's rate significantly higher than comparison's (exact always-valid
   rate-ratio test, `campaigns.stats.rates`), on every recipient so far: **rollback**.
6. **Too few matured recipients** (fewer than ``min_samples_per_arm`` in treatment or comparison):
   **hold**. No data never promotes.
7. **Per segment**: a report segment whose primary metric is significantly worse (alpha divided
   between the segments) while the rest is not: **exclude_segment** (the rollout goes on for the
   others). Segments already excluded are left out of every whole-arm test from then on.
8. **Primary metric** significantly worse: on the events arrived so far (exact rate-ratio test,
   `campaigns.decisions.early`, before the minimum of matured data) or on matured recipients
   (one-sided harm mixture, `campaigns.stats.lift`), each at half the harm alpha: **rollback**.
9. **Gates** of the stage not met on matured recipients (recipients per arm, events, time): **hold**;
   the current stage needs at least ``min_samples_per_arm`` matured recipients per arm in any plan
   (a manual plan too), so a rollout completes only after its last stage's evidence matured.
10. ``advance_when == "better"`` and the primary metric is not significantly better: **hold**.
11. From the last stage: **hold** unless the primary metric and the guardrails had the power to
    see the harm that matters (`campaigns.decisions.power`): no completion on noise.
12. Otherwise **advance** (from the last stage: complete).

Comparison arms are ``control`` and ``holdout`` together (both get control content by bucket);
``forced`` treatment (allow-list, beta group) is never compared: it is not randomized. Statistics use
the randomized (percent) stages so far, stratified by stage.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from campaigns.decisions.early import SHARE as EARLY_SHARE
from campaigns.decisions.early import confined_to, early_harm, early_json, early_reason, lift_confined_to
from campaigns.decisions.holds import blocking_gates, hold_reason
from campaigns.decisions.policy import LATENCY_GUARDRAIL, METRIC_DEFS, UNCAPPED, MetricDef
from campaigns.decisions.power import completion_power
from campaigns.decisions.primary import arms_of, primary_lift, randomized_stages
from campaigns.decisions.segments import segment_harm
from campaigns.decisions.snapshot import (
    COMPARISON_ARMS,
    LIVE_STATES,
    RANDOMIZED_ARMS,
    Evidence,
    Snapshot,
    Verdict,
    arm_sum,
    expected_shares,
    recipients,
)
from campaigns.decisions.watch import watch
from campaigns.events.metrics import RENDER_BUCKETS, RENDER_EDGES_MS
from campaigns.rollout.gates import GateObservation, unmet_gates
from campaigns.stats import cap_test, compare, histogram_quantile, rate_ratio_test, srm_test
from campaigns.stats.lift import LiftTest
from campaigns.stats.rates import RISE_THETAS

GATE_EVENTS = ("open", "click", "conversion")


def _render_p95(snapshot: Snapshot, arm_names: tuple[str, ...]) -> tuple[float | None, float]:
    counts = [0.0] * len(RENDER_BUCKETS)
    for arms in snapshot.data.values():
        for i, name in enumerate(RENDER_BUCKETS):
            counts[i] += arm_sum(arms, arm_names, name)[0]
    return histogram_quantile(RENDER_EDGES_MS, counts, 0.95), sum(counts)


def _stale(snapshot: Snapshot, hours: float) -> str | None:
    if snapshot.last_send_at is None:
        return None
    reference = snapshot.last_event_at or snapshot.first_send_at
    if reference is None or snapshot.last_send_at <= reference:
        return None
    # quiet since the recipients sent after the last event had their chance to bring one
    quiet = snapshot.now - max(reference, snapshot.resumed_send_at or reference)
    if quiet <= timedelta(hours=hours):
        return None
    return (
        f"stale data: recipients were sent until {snapshot.last_send_at.isoformat()} but no tracking event "
        f"arrived for {quiet.total_seconds() / 3600:.1f} h (limit {hours:g} h): tracking or ingest is down"
    )


def primary_def(snapshot: Snapshot) -> MetricDef:
    cfg = snapshot.config
    stage = snapshot.stages[min(snapshot.stage_index, len(snapshot.stages) - 1)]
    name = stage.gates.primary_metric or cfg.primary_metric
    return METRIC_DEFS[name] if name in METRIC_DEFS else METRIC_DEFS[cfg.primary_metric]


def gate_observation(snapshot: Snapshot) -> GateObservation:
    """What the current stage gathered on matured recipients, in the state machine's terms:
    ``treatment`` is everyone matured who received AI content (forced included), ``control`` the
    comparison arms, ``events`` human opens, clicks and conversions of matured recipients (each
    counted on its own window). `transition` re-checks the gates against it."""
    policy = snapshot.config.policy
    whole = snapshot.whole
    metric = primary_def(snapshot)
    arms = whole.view(metric.numerator, policy).get(snapshot.stage_index, {})
    counted = {
        "treatment": int(arm_sum(arms, ("treatment", "forced"), "sent")[0]),
        "control": int(arm_sum(arms, COMPARISON_ARMS, "sent")[0]),
    }
    events = 0.0
    for event in GATE_EVENTS:
        view = whole.view(event, policy).get(snapshot.stage_index, {})
        events += arm_sum(view, tuple(view), event)[0]
    return GateObservation(
        recipients_per_arm=counted, events=int(events), stage_started_at=snapshot.stage_started_at
    )


def _srm(snapshot: Snapshot) -> tuple[dict[str, Any], bool, str]:
    """The sample-ratio test on recipients per stage, or, when the evaluation counted them, on distinct
    contacts (`Snapshot.srm_contacts`): a list re-sent every week repeats the same contacts, whose
    split is fixed, so counting sends would grow the statistic with every send."""
    contacts = snapshot.srm_contacts
    observed, shares = [], []
    for index in randomized_stages(snapshot):
        expected = expected_shares(snapshot.stages[index].exposure_bp, snapshot.holdout_bp)
        if contacts is not None:
            observed.append([float(contacts.get(index, {}).get(a, 0.0)) for a in RANDOMIZED_ARMS])
        else:
            arms = snapshot.data.get(index, {})
            observed.append(
                [arm_sum(arms, (a,), "sent")[0] + arm_sum(arms, (a,), "failed")[0] for a in RANDOMIZED_ARMS]
            )
        shares.append([expected[a] for a in RANDOMIZED_ARMS])  # fmt: skip
    srm = srm_test(observed, shares, alpha=snapshot.config.policy.srm_alpha)
    unit = "contacts (each at its first send)" if contacts is not None else "recipients"
    why = (
        f"sample-ratio mismatch: {unit} per stage {[list(map(int, o)) for o in observed]} (treatment, control, "
        f"holdout) against the bucket ranges; sequential e-value {math.exp(min(srm.log_e, 700)):.3g} >= "
        f"{1 / srm.alpha:g}"
    )
    return {**srm.to_json(), "arms": list(RANDOMIZED_ARMS), "unit": unit}, srm.mismatch, why


def _caps_and_guardrails(snapshot: Snapshot, whole: Evidence) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:  # fmt: skip
    """Fast harm signals on every recipient so far (immature included: harm direction only)."""
    cfg, policy = snapshot.config, snapshot.config.policy
    stage = snapshot.stages[snapshot.stage_index]
    guardrails = tuple(g for g in cfg.active(stage.gates.guardrails) if g.name != cfg.primary_metric)
    rail_alpha = policy.rail_alpha(sum(1 for g in guardrails if g.name != LATENCY_GUARDRAIL))
    treated = ("treatment", "forced")
    caps: dict[str, Any] = {}
    comparisons: dict[str, Any] = {}
    rollback: list[str] = []
    health: list[str] = []
    for rail in guardrails:
        if rail.cap is None or rail.name in UNCAPPED:
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
        n = sum(recipients(arms, treated, metric) for arms in whole.data.values())
        events = sum(arm_sum(arms, treated, metric.numerator)[1] for arms in whole.data.values())
        check = cap_test(events, n, rail.cap, alpha=rail.alpha(rail_alpha))
        caps[rail.name] = {**check.to_json(), "cap": rail.cap}
        if check.worse:
            rollback.append(
                f"{rail.name} of treatment is {check.rate_treatment:.4%}, significantly above its cap of {rail.cap:.4%}"
            )
            health.append(f"cap:{rail.name}")
    if randomized_stages(snapshot):
        for rail in guardrails:
            if rail.name == LATENCY_GUARDRAIL:
                continue
            metric = METRIC_DEFS[rail.name]
            # fast harm signals read every recipient; a drop (clicks) is read on matured ones only
            view = whole.view(metric.numerator, policy) if metric.higher_is_better else whole.data
            t_arms = arms_of(snapshot, view, metric, ("treatment",))
            c_arms = arms_of(snapshot, view, metric, COMPARISON_ARMS)
            if metric.higher_is_better:  # harm is a drop: "comparison's rate is higher than treatment's"
                test = rate_ratio_test(
                    c_arms.total, c_arms.n, t_arms.total, t_arms.n, alpha=rail.alpha(rail_alpha)
                )
                rate_t, rate_c = test.rate_control or 0.0, test.rate_treatment
            else:
                test = rate_ratio_test(
                    t_arms.total, t_arms.n, c_arms.total, c_arms.n, alpha=rail.alpha(rail_alpha),
                    thetas=RISE_THETAS,
                )  # fmt: skip
                rate_t, rate_c = test.rate_treatment, test.rate_control or 0.0
            interval = compare(t_arms, c_arms, binary=True, alpha=rail_alpha, tuning_n=policy.tuning_n)
            comparisons[rail.name] = {**test.to_json(), "rate_treatment": rate_t, "rate_control": rate_c,
                                      "harm": "drop" if metric.higher_is_better else "rise",
                                      "difference": interval.to_json()}  # fmt: skip
            if test.worse:
                ratio = rate_t / rate_c if rate_c > 0 else 0.0
                rollback.append(
                    f"{rail.name} is significantly worse: {rate_t:.4%} in treatment against "
                    f"{rate_c:.4%} in comparison (rate ratio {ratio:.2f})"
                )
                health.append(f"guardrail:{rail.name}")
    return caps, comparisons, rollback, health


def _primary_json(
    snapshot: Snapshot, evidence: Evidence, metric: MetricDef, test: LiftTest
) -> dict[str, Any]:
    policy = snapshot.config.policy
    view = evidence.view(metric.numerator, policy)
    t = arms_of(snapshot, view, metric, ("treatment",))
    c = arms_of(snapshot, view, metric, COMPARISON_ARMS)
    means = compare(t, c, binary=metric.binary, alpha=policy.benefit_alpha, tuning_n=policy.tuning_n)
    sign = 1.0 if metric.higher_is_better else -1.0
    flip = (lambda x: x) if sign > 0 else (lambda x: None if x is None else -x)
    low, high = (test.lift_low, test.lift_high) if sign > 0 else (flip(test.lift_high), flip(test.lift_low))
    return {
        "metric": metric.name,
        "status": test.status,
        "n_treatment": means.n_treatment,
        "n_control": means.n_control,
        "mean_treatment": means.mean_treatment,
        "mean_control": means.mean_control,
        "lift": flip(test.lift),
        "lift_low": low,
        "lift_high": high,
        "log_e_harm": test.log_e_harm,
        "log_e_benefit": test.log_e_benefit,
        "alpha_harm": test.alpha_harm,
        "alpha_benefit": test.alpha_benefit,
        "smallest_effect": test.smallest_effect,
        "information": test.information,
        "matured_window_hours": policy.window(metric.numerator),
        "better": test.better,
        "worse": test.worse,
    }


def decide(snapshot: Snapshot) -> Verdict:
    """The decision for this snapshot; see the module docstring for the order of checks."""
    cfg, policy = snapshot.config, snapshot.config.policy
    evidence: dict[str, Any] = {"config": cfg.to_json(), "stage_index": snapshot.stage_index,
                                "manual_plan": snapshot.manual}  # fmt: skip
    if snapshot.state == "completed" and not snapshot.killed and snapshot.stages:
        return watch(snapshot, evidence)
    if snapshot.state not in LIVE_STATES or snapshot.killed:
        why = "killed" if snapshot.killed else snapshot.state
        return Verdict("hold", (f"the rollout is {why}: nothing to decide",), evidence)
    if not 0 <= snapshot.stage_index < len(snapshot.stages):
        return Verdict("hold", (f"stage {snapshot.stage_index} is not in the plan",), evidence)
    stage = snapshot.stages[snapshot.stage_index]
    evidence["stage"] = stage.to_json()
    metric = primary_def(snapshot)
    matures = snapshot.matures_at(metric.numerator)
    evidence["maturation"] = {
        "window_hours": policy.window(metric.numerator),
        "stage_matures_at": matures.isoformat() if matures else None,
        "matured": matures is not None and matures <= snapshot.now,
    }

    stale = _stale(snapshot, policy.stale_after_hours)
    evidence["freshness"] = {
        "last_send_at": snapshot.last_send_at.isoformat() if snapshot.last_send_at else None,
        "last_event_at": snapshot.last_event_at.isoformat() if snapshot.last_event_at else None,
    }
    if stale:
        return Verdict("pause", (stale,), evidence, ("stale",))

    randomized = stage.kind == "percent"
    if randomized_stages(snapshot):
        evidence["srm"], mismatch, why = _srm(snapshot)
        if mismatch:
            return Verdict("pause", (why,), evidence, ("srm",))

    # segments already set apart leave every whole-arm test from now on
    whole = snapshot.whole
    for name in snapshot.excluded_segments:
        if name in snapshot.segments:
            whole = whole.minus(snapshot.segments[name])
    evidence["excluded_segments"] = list(snapshot.excluded_segments)

    caps, rails, rollback, health = _caps_and_guardrails(snapshot, whole)
    evidence["caps"] = caps
    evidence["guardrails"] = rails
    if rollback:
        return Verdict("rollback", tuple(rollback), evidence, tuple(health))

    better = False
    test = None
    if randomized_stages(snapshot):
        early = early_harm(snapshot, whole, metric)  # 8a. on events as they arrive, half the harm alpha
        if early is not None:
            evidence["primary_early"] = early_json(early)
            if early.worse and confined_to(snapshot, whole, metric) is None:
                return Verdict("rollback", (early_reason(metric, early),), evidence)
        view = whole.view(metric.numerator, policy)
        n_t = sum(arms_of(snapshot, view, metric, ("treatment",)).n)
        n_c = sum(arms_of(snapshot, view, metric, COMPARISON_ARMS).n)
        evidence["recipients"] = {"treatment": n_t, "comparison": n_c, "matured": True}
        if min(n_t, n_c) < policy.min_samples_per_arm:
            short = blocking_gates(snapshot, gate_observation(snapshot), stage, matures)
            evidence["blocking"] = short
            return Verdict("hold", ("not enough matured data: " + hold_reason(short),), evidence)
        segment = segment_harm(snapshot, whole, metric)
        if segment is not None:
            evidence["segments"] = segment.evidence
            if segment.exclude is not None:
                return Verdict(
                    "exclude_segment",
                    (segment.reason,),
                    {**evidence, "segment": segment.exclude},
                    (f"segment:{segment.exclude}",),
                )
        test = primary_lift(snapshot, whole, metric, policy.harm_alpha * (1 - EARLY_SHARE))
        evidence["primary"] = _primary_json(snapshot, whole, metric, test)
        if segment is not None and segment.hold is not None and not test.worse:
            return Verdict("hold", (segment.reason,), evidence)
        confined = lift_confined_to(snapshot, whole, metric, test.alpha_harm) if test.worse else None
        if confined is not None:
            return Verdict(
                "hold",
                (f"{metric.name} is significantly worse overall, but not without segment {confined!r}: holding "
                 "the stage until the per-segment test shows whether to exclude it or to roll back",),
                evidence,
            )  # fmt: skip
        if test.worse:
            p = evidence["primary"]
            return Verdict(
                "rollback",
                (f"{metric.name} is significantly worse: lift {_pct(p['lift'])} "
                 f"[{_pct(p['lift_low'])}, {_pct(p['lift_high'])}] on matured recipients",),
                evidence,
            )  # fmt: skip
        better = test.better

    observation = gate_observation(snapshot)
    arms = ("treatment",) if randomized or stage.exposes_allow_list else ("control",)
    unmet = unmet_gates(stage.gates, observation, snapshot.now, arms=arms)
    blocking: list[dict[str, Any]] = []
    if randomized:
        blocking = blocking_gates(snapshot, observation, stage, matures)
        unmet = [u for u in unmet if not u.startswith(("treatment ", "control "))]
    elif sum(observation.recipients_per_arm.values()) <= 0:
        unmet.append("no matured recipients in this stage yet: no data never promotes")
    evidence["gates"] = {"observed": observation.to_json(), "unmet": unmet, "blocking": blocking}
    if unmet or blocking:
        said = ([hold_reason(blocking)] if blocking else []) + unmet
        return Verdict("hold", ("gates not met on matured recipients: " + "; ".join(said),), evidence)
    if randomized and policy.advance_when == "better" and not better:
        return Verdict(
            "hold",
            (f"{metric.name} is not significantly better yet (policy: advance when better)",),
            evidence,
        )
    last = snapshot.stage_index + 1 >= len(snapshot.stages)
    if last:
        completion = completion_power(snapshot, whole, test)
        evidence["completion"] = {"powered": completion.powered, **completion.evidence,
                                  "missing": list(completion.missing)}  # fmt: skip
        if not completion.powered:
            return Verdict(
                "hold",
                ("not completing on noise: " + "; ".join(completion.missing)
                 + " (an approver may complete it by hand, recorded as completed without evidence)",),
                evidence,
            )  # fmt: skip
    reasons = []
    if randomized:
        reasons.append(
            f"{metric.name} is " + ("significantly better" if better else "not significantly worse")
        )
    reasons.append(
        "gates met on matured recipients: "
        + ("completing the rollout" if last else f"advancing to stage {snapshot.stage_index + 1}")
    )
    return Verdict("advance", tuple(reasons), evidence)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"
