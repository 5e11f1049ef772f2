"""Simulated rollout streams for bench/decisions.py: one cell (wave size, base rate, event delays) and
one scenario, many rollouts at once; a look after every wave (daily).

Each rollout sends a wave of ``wave`` contacts a day through its plan (the plan `campaigns.rollout.sizing`
gives that audience), contacts fall in four equal report segments, arms by exposure and the holdout the
planner gives that audience (`holdout_for`: 5%, or more where the watch after 100% needs it).
Events (conversions, unsubscribes, complaints, bounces, clicks at 4%) arrive by a delay profile (``hours``: all within the first day; ``days``: 60%, 25%, 15% over three
days); the maturation window is what the workspace would learn from those delays (95% arrived).
Methods: ``mailramp`` (the real `decide`, sized plan, learned window), ``oracle`` (Wald's SPRT that knows
the true effect, on every event as it arrives, advancing on the same gates), ``gbstats`` (GrowthBook's
sequential two-sided test on matured pooled counts, same gates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from campaigns.decisions import Evidence, Snapshot, decide
from campaigns.decisions.policy import parse_config
from campaigns.rollout.sizing import DEFAULT_BASELINES, Cadence, PlanInputs
from campaigns.rollout.stages import parse_plan
from campaigns.rollout.watch_forecast import default_holdout
from campaigns.stats.lift import relative_sequence, sprt_log_lr

ARMS = ("treatment", "control", "holdout")
EVENTS = ("conversion", "unsubscribe", "complaint", "bounce", "click")
BASE = {"failed": 0.001, "unsubscribe": 0.003, "complaint": 0.0003, "bounce": 0.005, "click": 0.04}
ARRIVALS = {"hours": (1.0, 0.0, 0.0), "days": (0.6, 0.25, 0.15)}  # share arriving on days 1, 2, 3
LEARNED = {"hours": (12.0, 3.0), "days": (64.0, 20.0)}  # (95% window, median) a workspace would learn
HOLDOUT_BP = 500
SEGMENTS = ("A", "B", "C", "D")
START = datetime(2024, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cell:
    wave: int
    base: float
    delay: str  # hours | days

    @property
    def name(self) -> str:
        return f"{self.wave / 1000:g}k/{round(self.base * 100, 4):g}%/{self.delay}"

    @classmethod
    def parse(cls, name: str) -> Cell:
        """A cell from its name, any wave size and base rate: `50k/2%/days`, `2.5k/0.5%/hours`."""
        try:
            wave, base, delay = name.strip().split("/")
            cell = cls(
                round(float(wave.removesuffix("k")) * 1000), float(base.removesuffix("%")) / 100, delay
            )
        except ValueError:
            raise ValueError(f"cell {name!r}: expected WAVEk/BASE%/DELAY, such as 20k/3%/days") from None
        if delay not in ARRIVALS or cell.wave < 100 or not 0 < cell.base < 1:
            raise ValueError(f"cell {name!r}: delay hours or days, at least 0.1k a wave, base in (0%, 100%)")
        return cell


@lru_cache(maxsize=64)
def holdout_for(cell: Cell) -> int:
    """The holdout the planner gives this audience (`campaigns.rollout.watch_forecast.default_holdout`):
    one wave a day, unsubscribes at 0.3% arriving as the cell's delays make them."""
    window, p50 = LEARNED[cell.delay]
    rates = {**DEFAULT_BASELINES, "conversion_rate": cell.base, "unsubscribe_rate": BASE["unsubscribe"]}
    inputs = PlanInputs(Cadence("series", cell.wave, 24.0), baselines=rates, unsubscribe_window_hours=window,
                        unsubscribe_p50_hours=p50)  # fmt: skip
    return default_holdout(inputs, HOLDOUT_BP)


def window_days(cell: Cell) -> int:
    """Looks (days) until a cohort has matured for conversions at the learned window."""
    return max(1, math.ceil(LEARNED[cell.delay][0] / 24))


class Streams:
    """Cohort arrays of many rollouts: one cohort per wave."""

    def __init__(self, rollouts: int, waves: int, n_stages: int) -> None:
        shape = (rollouts, waves, len(SEGMENTS), len(ARMS))
        self.sent = np.zeros(shape)
        self.failed = np.zeros(shape)
        self.events = np.zeros((*shape, len(EVENTS), 3))  # by arrival day
        self.stage = np.full((rollouts, waves), -1, dtype=int)
        self.n_stages = n_stages

    def send_wave(self, rng: np.random.Generator, idx: np.ndarray, wave: int, exposure_bp: np.ndarray,
                  stage: np.ndarray, excluded: np.ndarray, effect: dict[str, dict[str, float]], cell: Cell) -> None:  # fmt: skip
        holdout_bp = holdout_for(cell)
        exposure = np.minimum(exposure_bp, 10_000 - holdout_bp) / 10_000
        self.stage[idx, wave] = stage[idx]
        per_segment = rng.multinomial(cell.wave, [1 / len(SEGMENTS)] * len(SEGMENTS), size=idx.size)
        arrival = ARRIVALS[cell.delay]
        for g, name in enumerate(SEGMENTS):
            seg_effect = effect.get(name, effect.get("*", {}))
            n = np.where(excluded[idx, g], 0, per_segment[:, g])
            n_t = rng.binomial(n, exposure)
            n_h = rng.binomial(n - n_t, np.minimum(holdout_bp / 10_000 / (1 - exposure), 1.0))
            for a, count in enumerate((n_t, n - n_t - n_h, n_h)):
                failed = rng.binomial(count, BASE["failed"])
                sent = count - failed
                self.sent[idx, wave, g, a] = sent
                self.failed[idx, wave, g, a] = failed
                for m, event in enumerate(EVENTS):
                    base = cell.base if event == "conversion" else BASE[event]
                    rate = min(base * (seg_effect.get(event, 1.0) if a == 0 else 1.0), 1.0)
                    total = rng.binomial(sent, rate)
                    first = rng.binomial(total, arrival[0])
                    second = (
                        rng.binomial(total - first, arrival[1] / (1 - arrival[0]))
                        if arrival[0] < 1
                        else 0 * first
                    )
                    self.events[idx, wave, g, a, m] = np.stack(
                        [first, second, total - first - second], axis=-1
                    )

    def sums(self, idx: np.ndarray, wave: int, matured_days: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(sent, failed, events) per rollout, stage, segment, arm[, event] at the look after `wave`:
        events arrived so far; only cohorts at least `matured_days` old when given."""
        age = wave + 1 - np.arange(wave + 1)
        arrived = np.minimum(age, 3)
        keep = np.ones(wave + 1) if matured_days is None else (age >= matured_days).astype(float)
        cum = np.cumsum(self.events[idx, : wave + 1], axis=-1)
        seen = np.take_along_axis(cum, (arrived - 1).reshape(1, -1, 1, 1, 1, 1), axis=-1)[..., 0]
        onehot = (self.stage[idx, : wave + 1, None] == np.arange(self.n_stages)).astype(float) * keep[
            None, :, None
        ]
        sent = np.einsum("rws,rwga->rsga", onehot, self.sent[idx, : wave + 1])
        failed = np.einsum("rws,rwga->rsga", onehot, self.failed[idx, : wave + 1])
        events = np.einsum("rws,rwgam->rsgam", onehot, seen)
        return sent, failed, events


def _stage_arms(sent: np.ndarray, failed: np.ndarray, events: np.ndarray, upto: int, segment: int | None) -> dict[int, Any]:  # fmt: skip
    out: dict[int, Any] = {}
    for s in range(upto + 1):
        arms: dict[str, dict[str, tuple[float, float, float]]] = {}
        for a, arm in enumerate(ARMS):
            if segment is None:
                n, f, ev = sent[s, :, a].sum(), failed[s, :, a].sum(), events[s, :, a].sum(axis=0)
            else:
                n, f, ev = sent[s, segment, a], failed[s, segment, a], events[s, segment, a]
            metrics = {"sent": (float(n),) * 3, "failed": (float(f),) * 3}
            for m, event in enumerate(EVENTS):
                metrics[event] = (float(ev[m]),) * 3
            arms[arm] = metrics
        out[s] = arms
    return out


def simulate(method: str, cell: Cell, effect: dict[str, dict[str, float]], stages: list[dict[str, Any]],
             rollouts: int, max_waves: int, seed: int, gb: Any = None, oracle_effect: float = 0.0,
             segments: bool = False) -> dict[str, np.ndarray]:  # fmt: skip
    rng = np.random.default_rng(seed)
    plan = parse_plan(stages)
    exposures = np.asarray([s.exposure_bp for s in plan])
    gates = np.asarray([s.gates.min_recipients_per_arm for s in plan])
    window = LEARNED[cell.delay][0]
    config = parse_config("conversion_rate", {"policy": {"maturation_hours": {"conversion": window}}})
    harm_alpha = config.policy.harm_alpha
    days = window_days(cell)
    n_s = len(plan)
    streams = Streams(rollouts, max_waves, n_s)
    stage = np.zeros(rollouts, dtype=int)
    live = np.ones(rollouts, dtype=bool)
    excluded = np.zeros((rollouts, len(SEGMENTS)), dtype=bool)
    outcome = np.array(["ramping"] * rollouts, dtype=object)
    reached_at = np.full(rollouts, -1)
    stopped_at = np.full(rollouts, -1)
    for wave in range(max_waves):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        streams.send_wave(rng, idx, wave, exposures[stage[idx]], stage, excluded, effect, cell)
        first_last = (stage[idx] == n_s - 1) & (reached_at[idx] < 0)
        reached_at[idx[first_last]] = wave
        sent_m, failed_m, ev_m = streams.sums(idx, wave, days)
        gate_met = sent_m[np.arange(idx.size), stage[idx], :, 0].sum(axis=1) >= gates[stage[idx]]
        decisions: dict[int, str] = {}
        if method == "mailramp":
            sent, failed, ev = streams.sums(idx, wave, None)
            now = START + timedelta(days=wave + 1)
            for j, r in enumerate(idx):
                s = int(stage[r])
                view = _stage_arms(sent_m[j], failed_m[j], ev_m[j], s, None)
                matured = {window: view, 24.0: view, 72.0: view}
                seg = {}
                if segments:
                    seg = {name: Evidence(_stage_arms(sent[j], failed[j], ev[j], s, g),
                                          {w: _stage_arms(sent_m[j], failed_m[j], ev_m[j], s, g) for w in (window,)})
                           for g, name in enumerate(SEGMENTS)}  # fmt: skip
                verdict = decide(
                    Snapshot(
                        rollout_id=int(r), state="ramping", killed=False, stage_index=s, stages=plan,
                        holdout_bp=holdout_for(cell), config=config, data=_stage_arms(sent[j], failed[j], ev[j], s, None),
                        now=now, matured=matured, segments=seg,
                        excluded_segments=tuple(n for g, n in enumerate(SEGMENTS) if excluded[r, g]),
                        stage_last_send_at=now - timedelta(days=1), stage_started_at=START,
                    )
                )  # fmt: skip
                if verdict.outcome == "exclude_segment":
                    excluded[r, SEGMENTS.index(verdict.evidence["segment"])] = True
                else:
                    decisions[int(r)] = verdict.outcome
        else:
            if method == "oracle":  # every event as it arrives
                sent_o, _, ev_o = streams.sums(idx, wave, None)
            else:
                sent_o, ev_o = sent_m, ev_m
            n_t, x_t = sent_o[:, :, :, 0].sum(axis=2), ev_o[:, :, :, 0, 0].sum(axis=2)
            n_c, x_c = sent_o[:, :, :, 1:].sum(axis=(2, 3)), ev_o[:, :, :, 1:, 0].sum(axis=(2, 3))
            if method == "oracle":
                est, info = relative_sequence(n_t, x_t, x_t, n_c, x_c, x_c, True)
                worse = (
                    (sprt_log_lr(est, info, oracle_effect) >= math.log(1 / harm_alpha))
                    if oracle_effect < 0
                    else np.zeros(idx.size, bool)
                )
            else:
                worse = np.array([gb(n_t[j].sum(), x_t[j].sum(), n_c[j].sum(), x_c[j].sum()) if gb else False
                                  for j in range(idx.size)])  # fmt: skip
            for j, r in enumerate(idx):
                decisions[int(r)] = "rollback" if worse[j] else ("advance" if gate_met[j] else "hold")
        for rid, verdict_outcome in decisions.items():
            if verdict_outcome == "advance":
                if stage[rid] + 1 < n_s:
                    stage[rid] += 1
                    continue
                outcome[rid] = "completed"
            elif verdict_outcome in ("rollback", "pause"):
                outcome[rid] = "rolled_back" if verdict_outcome == "rollback" else "paused"
            else:
                continue
            live[rid] = False
            stopped_at[rid] = wave
    exposed = streams.sent[:, :, :, 0].sum(axis=(1, 2)) + streams.failed[:, :, :, 0].sum(axis=(1, 2))
    return {"outcome": outcome, "reached_at": reached_at, "stopped_at": stopped_at, "exposed": exposed,
            "excluded": excluded}  # fmt: skip
