"""A plan sized to the audience (pure): stages and gates from what the audience can show.

What the planner is told (`PlanInputs`): how many contacts one send reaches (the audience's sendable
size, or a campaign's wave size), how often it sends (one-off, recurring, a series sharing the
rollout: hours between sends, and how many sends a one-off has), the baselines (the workspace's own
history, or stated defaults), the harm that matters (default: -20% relative on the primary metric,
x2 unsubscribes and complaints), the maturation window of the primary metric and the alphas of the
decision policy.

**Gates in statistical information.** The primary metric's harm test (`campaigns.stats.lift`) reaches
its threshold ``A = log(1 / alpha) + log(1 / weight)`` with power ``1 - beta`` against a relative harm
``h`` once the information ``I = sum_s m_s^2 / v_s`` reaches ``(z_beta + sqrt(z_beta^2 + 2 A))^2 / h^2``;
for a 0/1 metric with baseline ``p`` a treatment recipient at exposure ``e`` adds about
``p / (1 - p) * (1 - e)`` of it. The guardrails' exact rate-ratio test needs, against a ratio
``theta``, ``lambda`` expected treatment events with ``lambda (theta log theta - theta + 1) -
z_beta sqrt(lambda theta) log theta >= A``. The first stage is the smallest exposure of the ladder
whose gate (the information to detect the harm with power, in matured treatment recipients) fills
within ``TARGET_SENDS`` sends; each later stage needs one send's matured evidence (the harm that
matters has been ruled out with power before anyone past the first stage gets AI content).

**The last step needs more.** 80% power leaves one harm in five undetected at the first gate; most
are caught at the later stages, but on a small or slow list a harm missed by chance could reach
everyone. So the stage before the cap is gated on the information (summed over the stages, as the
lift test sums it) to detect the harm that matters with ``FINAL_POWER`` (99.5%): about 2.6x the first
gate's. The earlier stages keep 80%; a list that gathers that information quickly pays nothing, a
small one waits longer at its last stage before everyone gets AI content (the forecast prices it).

**Too small to learn.** When the first stage cannot gather that information on the primary metric
within a year (or within a one-off campaign's sends), the plan says so in words and, unless the
marketer chose ``mode="learn"`` knowingly, sizes its gates on the guardrails instead (``"protect"``):
it ramps while unsubscribes and complaints show no harm it could detect, and says that it cannot
judge the primary metric. Nothing holds silently.

`forecast` (in `campaigns.rollout.forecast`) walks the same numbers send by send.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from campaigns.stats.lift import GRID, WEIGHTS
from campaigns.stats.rates import RISE_THETAS

BASIS = 10_000
LADDER = (100, 500, 1000, 2500, 5000)  # basis points; the cap (100% by default) comes last
TARGET_SENDS = 6  # the first stage should gather its evidence within this many sends
Z_POWER = 0.8416212335729143  # one-sided z of 80% power
POWER = 0.8
Z_FINAL = 2.5758293035489004  # one-sided z of 99.5% power: the information before the step to the cap
FINAL_POWER = 0.995
YEAR_HOURS = 24 * 365
MIN_SAMPLES = 200
# Stated baselines when the workspace has no history (per recipient).
DEFAULT_BASELINES: dict[str, float] = {
    "conversion_rate": 0.02,
    "click_rate": 0.03,
    "open_rate": 0.2,
    "revenue_per_recipient": 0.02,
    "unsubscribe_rate": 0.003,
    "complaint_rate": 0.0003,
}
DEFAULT_HARM: dict[str, float] = {"primary": 0.2, "unsubscribe_rate": 2.0, "complaint_rate": 2.0}
MODES = ("learn", "protect")
METRIC_WORDS = {
    "conversion_rate": "conversions",
    "click_rate": "clicks",
    "open_rate": "opens",
    "revenue_per_recipient": "revenue",
    "unsubscribe_rate": "unsubscribes",
    "complaint_rate": "complaints",
}


@dataclass(frozen=True)
class Cadence:
    kind: str  # one-off | recurring | series
    per_send: int  # contacts one send reaches (sendable)
    interval_hours: float  # between sends
    sends: int | None = None  # a one-off's number of sends (waves); None: it keeps sending
    source: str = "stated"  # where the cadence comes from


@dataclass(frozen=True)
class PlanInputs:
    cadence: Cadence
    primary_metric: str = "conversion_rate"
    baselines: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BASELINES))
    baseline_source: str = "stated defaults (no history in this workspace yet)"
    harm: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HARM))
    window_hours: float = 72.0  # the primary metric's maturation window
    arrival_p50_hours: float = 24.0  # half of the primary metric's events arrived by then
    unsubscribe_window_hours: float = 72.0  # the same for unsubscribes (what the watch after 100% sees)
    unsubscribe_p50_hours: float = 24.0
    harm_alpha: float = 0.03
    rail_alpha: float = 0.005
    holdout_bp: int = 500
    cap_bp: int = BASIS
    mode: str | None = None  # None: learn when the list can, protect otherwise

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["baselines"], out["harm"] = dict(self.baselines), dict(self.harm)
        return out


def arrival_share(p50_hours: float, window_hours: float, age_hours: float) -> float:
    """Share of a metric's events arrived `age_hours` after the send: piecewise linear through half
    at the median and 95% at the window (the learned or fixed maturation window), all after it."""
    p50, window = max(p50_hours, 1e-6), max(window_hours, p50_hours)
    if age_hours <= 0:
        return 0.0
    if age_hours <= p50:
        return 0.5 * age_hours / p50
    if age_hours <= window:
        return 0.5 + 0.45 * (age_hours - p50) / max(window - p50, 1e-6)
    return 1.0


def primary_threshold(alpha: float, harm: float, smallest: float = 0.1) -> float:
    """A: log(1/alpha) plus the mixture's price at the grid point nearest the harm. The matured test
    runs at half the harm alpha (the other half goes to the early harm test on arrived events)."""
    grid = [g * smallest for g in GRID]
    nearest = min(range(len(grid)), key=lambda i: abs(grid[i] - harm))
    return math.log(2.0 / alpha) + math.log(1.0 / WEIGHTS[nearest])


def info_needed(harm: float, threshold: float, z: float = Z_POWER) -> float:
    """Information at which a drift `harm` crosses `threshold` with the power of z."""
    x = z + math.sqrt(z * z + 2.0 * threshold)
    return x * x / (harm * harm)


def info_per_recipient(rate: float, exposure_bp: int) -> float:
    """Information one matured treatment recipient adds at this exposure (0/1 metric)."""
    p = min(max(rate, 1e-6), 0.5)
    share = min(exposure_bp, BASIS) / BASIS
    return p / (1.0 - p) * max(1.0 - share, 0.02)


def events_needed(theta: float, alpha: float, z: float = Z_POWER) -> float:
    """Expected baseline treatment events at which the rate-ratio test catches `theta` with power."""
    a = math.log(1.0 / alpha) + math.log(len(RISE_THETAS))
    drift = theta * math.log(theta) - theta + 1.0
    sd = math.sqrt(theta) * math.log(theta)
    y = (z * sd + math.sqrt(z * z * sd * sd + 4.0 * drift * a)) / (2.0 * drift)
    return y * y


def smallest_ratio(events: float, alpha: float, z: float = Z_POWER) -> float | None:
    """The smallest rate ratio the guardrail test catches with power on this many expected events."""
    if events <= 0 or events_needed(RISE_THETAS[-1], alpha, z) > events:
        return None
    low, high = 1.0001, RISE_THETAS[-1]
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if events_needed(mid, alpha, z) > events else (low, mid)
    return high


def smallest_harm(info: float, threshold: float, z: float = Z_POWER) -> float | None:
    """The smallest relative harm the primary test catches with power at this information."""
    if info <= 0:
        return None
    harm = (z + math.sqrt(z * z + 2.0 * threshold)) / math.sqrt(info)
    return harm if harm < 1.0 else None


@dataclass(frozen=True)
class Requirement:
    metric: str
    harm: float  # relative drop (primary) or rate ratio (guardrail)
    per_recipient: float  # information (or expected events) a matured treatment recipient adds
    needed: float  # information (or events) to detect the harm with power

    def recipients(self) -> int:
        return int(math.ceil(self.needed / max(self.per_recipient, 1e-12) / 10.0) * 10)


def primary_requirement(inputs: PlanInputs, exposure_bp: int) -> Requirement:
    harm = float(inputs.harm.get("primary", DEFAULT_HARM["primary"]))
    rate = float(inputs.baselines.get(inputs.primary_metric, DEFAULT_BASELINES["conversion_rate"]))
    threshold = primary_threshold(inputs.harm_alpha, harm)
    return Requirement(
        inputs.primary_metric, harm, info_per_recipient(rate, exposure_bp), info_needed(harm, threshold)
    )


def guardrail_requirement(inputs: PlanInputs, exposure_bp: int) -> Requirement:
    """The guardrail that needs the most recipients (the rarest event) decides."""
    worst: Requirement | None = None
    for metric in ("unsubscribe_rate", "complaint_rate"):
        theta = float(inputs.harm.get(metric, DEFAULT_HARM[metric]))
        rate = float(inputs.baselines.get(metric, DEFAULT_BASELINES[metric]))
        share = min(exposure_bp, BASIS) / BASIS
        req = Requirement(
            metric, theta, rate * max(1.0 - share, 0.02), events_needed(theta, inputs.rail_alpha)
        )
        if worst is None or req.recipients() > worst.recipients():
            worst = req
    assert worst is not None
    return worst


def treatment_per_send(inputs: PlanInputs, exposure_bp: int) -> float:
    share = min(exposure_bp, BASIS - inputs.holdout_bp) / BASIS
    return inputs.cadence.per_send * share


def sends_for(inputs: PlanInputs, exposure_bp: int, recipients: int) -> int | None:
    per = treatment_per_send(inputs, exposure_bp)
    return None if per <= 0 else max(1, math.ceil(recipients / per))


def lag_sends(inputs: PlanInputs) -> int:
    """Sends until a send's recipients have matured (at least one)."""
    return max(1, math.ceil(inputs.window_hours / max(inputs.cadence.interval_hours, 1e-6) - 1e-9))


def final_gate(inputs: PlanInputs, stages: list[dict[str, Any]]) -> int:
    """The gate of the stage before the cap: the information to detect the harm that matters with
    `FINAL_POWER`, less what the earlier stages are expected to have gathered (each sends until its
    gate has matured: ``ceil(gate / per send) + lag - 1`` sends), in matured treatment recipients."""
    req = primary_requirement(inputs, stages[-1]["exposure_bp"])
    threshold = primary_threshold(inputs.harm_alpha, req.harm)
    rate = float(inputs.baselines.get(inputs.primary_metric, DEFAULT_BASELINES["conversion_rate"]))
    got = 0.0
    for stage in stages[:-1]:
        bp, per = stage["exposure_bp"], treatment_per_send(inputs, stage["exposure_bp"])
        sends = math.ceil(stage["gates"]["min_recipients_per_arm"] / max(per, 1e-9)) + lag_sends(inputs) - 1
        got += info_per_recipient(rate, bp) * per * sends
    missing = info_needed(req.harm, threshold, Z_FINAL) - got
    need = missing / info_per_recipient(rate, stages[-1]["exposure_bp"])
    return int(math.ceil(max(need, 0.0) / 10.0) * 10)


def learnable(inputs: PlanInputs, sends: int | None) -> bool:
    if sends is None:
        return False
    if inputs.cadence.sends is not None and sends > inputs.cadence.sends - 1:
        return False
    return sends * inputs.cadence.interval_hours <= YEAR_HOURS


@dataclass(frozen=True)
class SizedPlan:
    mode: str  # learn | protect
    stages: list[dict[str, Any]]
    first_requirement: Requirement
    learnable_primary: bool
    primary_sends: int | None  # sends the primary metric's evidence would take at the first stage


def _first_stage(inputs: PlanInputs, requirement: Any) -> tuple[int, Requirement, int | None]:
    ladder = [bp for bp in LADDER if bp < inputs.cap_bp] or [inputs.cap_bp]
    chosen = ladder[-1]
    for bp in ladder:
        sends = sends_for(inputs, bp, requirement(inputs, bp).recipients())
        if sends is not None and sends <= TARGET_SENDS:
            chosen = bp
            break
    req = requirement(inputs, chosen)
    return chosen, req, sends_for(inputs, chosen, req.recipients())


def size_plan(inputs: PlanInputs) -> SizedPlan:
    """The default plan for this audience (see the module docstring)."""
    first_bp, req, sends = _first_stage(inputs, primary_requirement)
    can_learn = learnable(inputs, sends)
    mode = inputs.mode or ("learn" if can_learn else "protect")
    if mode == "protect":
        first_bp, req, _ = _first_stage(inputs, guardrail_requirement)
    stages = [_stage(first_bp, req.recipients())]
    for bp in [b for b in LADDER if first_bp < b < inputs.cap_bp] + [inputs.cap_bp]:
        if bp <= first_bp:
            continue
        one_send = int(treatment_per_send(inputs, bp) * 0.9)
        stages.append(_stage(bp, max(MIN_SAMPLES, min(one_send, req.recipients()))))
    if mode == "learn" and len(stages) > 1:  # the step to the cap: the harm ruled out with 99.5% power
        gates = stages[-2]["gates"]
        gates["min_recipients_per_arm"] = max(
            gates["min_recipients_per_arm"], final_gate(inputs, stages[:-1])
        )
    return SizedPlan(mode, stages, req, can_learn, sends)


def _stage(bp: int, recipients: int) -> dict[str, Any]:
    return {
        "name": f"{bp / 100:g}%",
        "kind": "percent",
        "exposure_bp": bp,
        "gates": {"min_recipients_per_arm": max(MIN_SAMPLES, recipients)},
    }
