"""The forecast of a plan (pure): the same numbers as the planner, walked send by send.

For any plan (sized, the workspace's, or typed by hand) and the audience's `PlanInputs`, expected
values only:

- **sends (and days) per stage**: a stage is left at the first look where its matured treatment
  recipients reach its gate in nearly every case (`gate_met`: their expected count two standard
  deviations above it, as the arm's size is drawn contact by contact and failed sends do not count;
  a forecast at the bare expectation is a coin toss whenever a stage's last send lands on its gate);
  a send's recipients mature ``window_hours`` after it, so a stage takes at least one send plus
  ``lag`` sends of waiting (``lag = ceil(window / interval)``, at least 1);
- **time to reach everyone**: until the first send at the last stage (the plan's cap);
- **time to complete**: the last stage then holds until its own gate has matured and the tests have
  the power to see the harm that matters (`campaigns.decisions.power`: the primary metric's -20% on
  matured recipients, unsubscribes and complaints doubling on the events arrived so far); a small
  list waits there longest (its holdout sees few events), and a plan that cannot get that power within
  the horizon says it completes only by an approver's hand;
- **the smallest harm each stage can detect** with 80% power on the evidence gathered by its end
  (relative, on the primary metric; a rate ratio, on unsubscribes);
- **the expected number of contacts exposed to a harmful variant** (the harm that matters): the
  treatment recipients sent before the harm test's median crossing (the matured lift test, or the
  early rate-ratio test on events as they arrive, whichever is first);
- **watching after 100%** (`watch`): within how many sends the watch would roll back a tripling of
  unsubscribes that starts after completion, in 90% of cases, with this holdout (the holdout sees
  few unsubscribes on a small list), and the smallest holdout that would do it within 3 sends;
- **words**: what this plan can and cannot learn on this audience, said plainly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from campaigns.rollout.gates import gate_met
from campaigns.rollout.sizing import (
    BASIS,
    METRIC_WORDS,
    POWER,
    YEAR_HOURS,
    PlanInputs,
    SizedPlan,
    arrival_share,
    events_needed,
    info_needed,
    info_per_recipient,
    lag_sends,
    primary_threshold,
    smallest_harm,
    smallest_ratio,
    treatment_per_send,
)
from campaigns.rollout.watch_forecast import sends_words, watch_summary, watch_words

HORIZON_SENDS = 520
# the early harm test's price for not knowing the harm's size, at the harm that matters: its mixture
# puts half its weight there (`campaigns.decisions.early.primary_ratios`)
EARLY_MIXTURE_COST = math.log(2.0)


def arrived(inputs: PlanInputs, age_hours: float) -> float:
    """Share of the primary metric's events arrived `age_hours` after the send."""
    return arrival_share(inputs.arrival_p50_hours, inputs.window_hours, age_hours)


def _walk(inputs: PlanInputs, stages: Sequence[tuple[int, int]]) -> list[int]:
    """The stage of each send, up to the horizon (or a one-off's sends)."""
    lag = lag_sends(inputs)
    limit = inputs.cadence.sends or HORIZON_SENDS
    out: list[int] = []
    k, stage_sends = 0, 0
    for _ in range(limit):
        matured = max(0, stage_sends - (lag - 1)) if stage_sends else 0
        # sends of this stage at least `lag` sends old have matured by send m
        if (
            k + 1 < len(stages)
            and stage_sends
            and gate_met(matured * treatment_per_send(inputs, stages[k][0]), stages[k][1])
        ):
            k, stage_sends = k + 1, 0
        out.append(k)
        stage_sends += 1
    return out


def _exposed(inputs: PlanInputs, exposures: list[int]) -> tuple[float | None, int | None]:
    """Expected treatment recipients sent before the median harm crossing, and at which send."""
    harm = float(inputs.harm.get("primary", 0.2))
    rate = float(inputs.baselines.get(inputs.primary_metric, 0.02))
    lag = lag_sends(inputs)
    lift_needed = 2.0 * primary_threshold(inputs.harm_alpha, harm) / (harm * harm)
    eta = -math.log(1.0 - harm)
    rr_needed = 2.0 * (math.log(2.0 / inputs.harm_alpha) + EARLY_MIXTURE_COST) / (eta * eta)
    sent = 0.0
    for m in range(len(exposures) + 1):
        lift_info = sum(
            info_per_recipient(rate, exposures[j]) * treatment_per_send(inputs, exposures[j])
            for j in range(0, m - lag + 1)
        )
        rr_info = sum(
            rate * max(1.0 - exposures[j] / BASIS, 0.02) * treatment_per_send(inputs, exposures[j])
            * arrived(inputs, (m - j) * inputs.cadence.interval_hours)
            for j in range(m)
        )  # fmt: skip
        if m and (lift_info >= lift_needed or rr_info >= rr_needed):
            return sent, m
        if m < len(exposures):
            sent += treatment_per_send(inputs, exposures[m])
    return None, None


def comparison_share(inputs: PlanInputs, exposure_bp: int) -> float:
    """The comparison's share at this exposure (control and holdout; the holdout alone at the cap)."""
    return max(1.0 - min(exposure_bp, BASIS - inputs.holdout_bp) / BASIS, 0.0)


def _complete(inputs: PlanInputs, walk: list[int], stages: Sequence[tuple[int, int]]) -> int | None:
    """The send after whose look the rollout is expected to complete (None: not within the horizon).
    Needs, at that look: the last stage's gate on matured recipients, the primary metric's -20% seen
    with 80% power on matured recipients, and unsubscribes and complaints doubling seen with 80% power
    on the events arrived so far (each guardrail's expected events: its rate times ``T C / (T + C)``
    of the pooled treatment and comparison recipients, as `rate_power` pools them)."""
    last = len(stages) - 1
    if last not in walk:
        return None
    lag = lag_sends(inputs)
    harm = float(inputs.harm.get("primary", 0.2))
    rate = float(inputs.baselines.get(inputs.primary_metric, 0.02))
    lift_needed = info_needed(harm, primary_threshold(inputs.harm_alpha, harm))
    odds = min(max(rate, 1e-6), 0.5) / (1.0 - min(max(rate, 1e-6), 0.5))
    rails = []
    for metric in ("unsubscribe_rate", "complaint_rate"):
        theta = float(inputs.harm.get(metric, 2.0))
        rails.append((float(inputs.baselines.get(metric, 0.0)), events_needed(theta, inputs.rail_alpha)))
    hours = inputs.cadence.interval_hours
    exposures = [stages[k][0] for k in walk]
    per = [treatment_per_send(inputs, bp) for bp in exposures]
    start = walk.index(last)
    for m in range(start, len(walk)):  # the look after send m
        matured = range(0, m + 2 - lag)
        at_last = sum(per[j] for j in matured if j >= start)
        if not gate_met(at_last, stages[last][1]):
            continue
        info = sum(odds * comparison_share(inputs, exposures[j]) * per[j] for j in matured)
        if info < lift_needed:
            continue
        # the guardrails' power is computed on pooled counts (`rate_power`): T C / (T + C) recipients
        got = [arrived(inputs, (m + 1 - j) * hours) for j in range(m + 1)]
        t = sum(per[j] * got[j] for j in range(m + 1))
        c = sum(
            inputs.cadence.per_send * comparison_share(inputs, exposures[j]) * got[j] for j in range(m + 1)
        )
        if all(r > 0 and r * t * c / max(t + c, 1e-9) >= need for r, need in rails):
            return m
    return None


def forecast(inputs: PlanInputs, stages: Sequence[Mapping[str, Any]], sized: SizedPlan | None = None) -> dict[str, Any]:  # fmt: skip
    """The forecast of a plan's percent stages for this audience (see the module docstring)."""
    percent = [
        (int(s["exposure_bp"]), int((s.get("gates") or {}).get("min_recipients_per_arm") or 0))
        for s in stages
        if s.get("kind", "percent") == "percent"
    ]
    hours = inputs.cadence.interval_hours
    out: dict[str, Any] = {"inputs": inputs.to_json(), "power": POWER, "lag_sends": lag_sends(inputs)}
    if not percent:
        return {**out, "stages": [], "sends_to_everyone": None, "days_to_everyone": None,
                "expected_exposed_if_harmful": None, "words": "this plan has no randomized stage: it cannot learn"}  # fmt: skip
    walk = _walk(inputs, percent)
    exposures = [percent[k][0] for k in walk]
    rate = float(inputs.baselines.get(inputs.primary_metric, 0.02))
    unsub = float(inputs.baselines.get("unsubscribe_rate", 0.003))
    harm = float(inputs.harm.get("primary", 0.2))
    threshold = primary_threshold(inputs.harm_alpha, harm)
    rows, info, events = [], 0.0, 0.0
    for k, (bp, gate) in enumerate(percent):
        n_sends = sum(1 for s in walk if s == k)
        reached = k in walk
        per = treatment_per_send(inputs, bp)
        if k + 1 < len(percent):
            info += info_per_recipient(rate, bp) * max(gate, per * n_sends if reached else 0)
            events += unsub * max(1.0 - bp / BASIS, 0.02) * max(gate, per * n_sends if reached else 0)
        low = smallest_harm(info, threshold)
        ratio = smallest_ratio(events, inputs.rail_alpha)
        rows.append({
            "name": f"{bp / 100:g}%", "exposure_bp": bp, "gate_recipients": gate,
            "treatment_per_send": round(per, 1),
            "sends": n_sends if reached and k + 1 < len(percent) and k + 1 in walk else None,
            "days": round(n_sends * hours / 24, 1) if reached and k + 1 in walk else None,
            "reached": reached,
            "smallest_harm_detectable": None if low is None else round(low, 3),
            "smallest_unsubscribe_ratio_detectable": None if ratio is None else round(ratio, 2),
        })  # fmt: skip
    last = len(percent) - 1
    to_all = walk.index(last) if last in walk else None
    exposed, caught_at = _exposed(inputs, exposures)
    done = _complete(inputs, walk, percent)
    out.update(
        stages=rows,
        sends_to_everyone=to_all,
        days_to_everyone=None if to_all is None else round(to_all * hours / 24, 1),
        sends_to_complete=done,
        days_to_complete=None if done is None else round(done * hours / 24, 1),
        expected_exposed_if_harmful=None if exposed is None else round(exposed),
        harm_caught_after_sends=caught_at,
        watch=watch_summary(inputs),
        words=words(inputs, sized, to_all),
    )
    if sized is not None:
        out.update(mode=sized.mode, learnable_primary=sized.learnable_primary)
    return out


def words(inputs: PlanInputs, sized: SizedPlan | None, to_all: int | None) -> str:
    """What the plan can and cannot learn on this audience, in plain words."""
    c = inputs.cadence
    who = f"on {c.per_send:,} contacts" + (
        {168.0: " a week", 24.0: " a day"}.get(c.interval_hours, f" every {c.interval_hours:g} h")
        if c.sends != 1
        else " in one send"
    )
    primary = METRIC_WORDS.get(inputs.primary_metric, inputs.primary_metric)
    harm = float(inputs.harm.get("primary", 0.2))
    parts = []
    theta = float(inputs.harm.get("unsubscribe_rate", 2.0))
    unsub = float(inputs.baselines.get("unsubscribe_rate", 0.003))
    first_bp = sized.stages[0]["exposure_bp"] if sized else BASIS // 2
    per = treatment_per_send(inputs, first_bp) * unsub * (1 - first_bp / BASIS)
    rail_sends = math.ceil(events_needed(theta, inputs.rail_alpha) / per) if per > 0 else None
    if rail_sends is not None and (c.sends is None or rail_sends <= c.sends):
        parts.append(
            f"{who} this rollout can catch a {'doubling' if theta == 2 else f'x{theta:g} rise'} of unsubscribes "
            f"within {sends_words(inputs, rail_sends)} at {first_bp / 100:g}%"
        )
    else:
        parts.append(f"{who} this rollout cannot catch a x{theta:g} rise of unsubscribes")
    if sized is not None and not sized.learnable_primary:
        limit = "within its sends" if c.sends is not None else "within a year"
        parts.append(f"it cannot tell a {harm:.0%} change in {primary} {limit}")
        if sized.primary_sends is not None and sized.primary_sends * c.interval_hours > YEAR_HOURS:
            parts[-1] += f" (it would need about {sized.primary_sends:,} sends)"
        if sized.mode == "protect":
            parts.append(
                "so it ramps on unsubscribes and complaints only (protective mode) and reports "
                f'{primary} without judging them; choose "learn" to hold until {primary} can be judged'
            )
        else:
            parts.append(f"you chose to learn: it holds at {first_bp / 100:g}% until {primary} can be judged")
    elif sized is not None and sized.primary_sends is not None:
        parts.append(
            f"it can tell a {harm:.0%} drop in {primary} within {sends_words(inputs, sized.primary_sends)} "
            f"at {first_bp / 100:g}%"
        )
    if to_all is not None:
        parts.append(f"it reaches everyone after about {sends_words(inputs, to_all)} if nothing is wrong")
        parts.append(watch_words(inputs))
    else:
        parts.append("it does not reach everyone within the forecast's horizon")
    return "; ".join(parts) + "."
