"""How fast the watch after 100% would catch a harm, and the holdout a plan needs for it (pure).

A completed rollout keeps its holdout, and `campaigns.decisions.watch` runs a CUSUM e-detector of AI
content against it for every guardrail. How fast that catches a harm depends on how many events the
holdout sees: on 5,000 contacts a day a 5% holdout sees about one unsubscribe a send, and a tripling
of unsubscribes that starts after completion takes about two weeks to show. A one-look normal
approximation of the detector was a send or two too pessimistic on small lists (it ignores the
earlier looks and the mixture's other ratios), so this module simulates the watch's own detector
(`campaigns.stats.rates.log_edetectors_rate_ratio`, the same ratios and alpha) on the audience's
numbers: ``DRAWS`` seeded streams of a ``theta``-fold rise of unsubscribes from the first send after
completion on, each send's events arriving along the unsubscribes' arrival curve (learned from the
workspace's own delays, or the fixed 72-hour window), looked at after every send.
`watch_sends` is the first send by which ``WATCH_POWER`` (90%) of the streams had crossed.

**The plan's holdout** (`default_holdout`): a rollout created without a holdout of its own (and
without an edited workspace default) gets the smallest of ``WATCH_HOLDOUTS`` (5% to 50%, the most a
rollout may hold out) with which the watch catches a tripling of unsubscribes within ``WATCH_SENDS``
(3) sends; where even 50% would not, the 5% default, since a larger holdout would cost AI content to
many contacts and still watch slowly (the forecast says how slowly, in words). A holdout above 5%
says in the forecast's words what it costs and what 5% would have taken. The simulated streams are
the same whatever the number of sends asked about, so a search up to 3 sends and the forecast's up
to ``HORIZON`` agree.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from campaigns.rollout.sizing import BASIS, PlanInputs, arrival_share
from campaigns.stats.rates import RISE_THETAS, log_edetectors_rate_ratio

# the watch's alpha per guardrail (`campaigns.decisions.watch.watch_alpha` of the default policy:
# 40% of 5% split between five guardrails) and its mixture of ratios (`WATCH_THETAS`)
WATCH_ALPHA = 0.004
WATCH_RATIOS = RISE_THETAS
WATCH_HOLDOUTS = tuple(range(500, 5001, 500))  # 5% to 50%, the largest holdout a rollout may have
WATCH_SENDS = 3
WATCH_POWER = 0.9
DRAWS = 400
HORIZON = 52  # sends simulated at most (a year of weekly sends)
SEED = 20_261_206


def watch_sends(inputs: PlanInputs, holdout_bp: int, theta: float = 3.0, limit: int = HORIZON) -> int | None:
    """Sends after a `theta`-fold rise of unsubscribes starts (after completion) until the watch has
    rolled it back in 90% of the simulated streams; None when not within `limit` sends."""
    return _simulated_sends(
        per_send=float(inputs.cadence.per_send),
        interval_hours=float(inputs.cadence.interval_hours),
        rate=float(inputs.baselines.get("unsubscribe_rate", 0.003)),
        p50_hours=float(inputs.unsubscribe_p50_hours),
        window_hours=float(inputs.unsubscribe_window_hours),
        holdout_bp=int(holdout_bp),
        theta=float(theta),
        limit=int(limit),
    )


def smallest_holdout(inputs: PlanInputs, at_least: int = 0) -> int | None:
    """The smallest of `WATCH_HOLDOUTS` (from `at_least` up) with which the watch catches a tripling
    of unsubscribes within `WATCH_SENDS` sends; None when none does."""
    return next(
        (h for h in WATCH_HOLDOUTS
         if h >= at_least and (watch_sends(inputs, h, limit=WATCH_SENDS) or 99) <= WATCH_SENDS),
        None,
    )  # fmt: skip


def default_holdout(inputs: PlanInputs, fallback_bp: int) -> int:
    """`smallest_holdout`, or `fallback_bp` when none of `WATCH_HOLDOUTS` does it."""
    found = smallest_holdout(inputs, at_least=fallback_bp)
    return fallback_bp if found is None else found


def watch_summary(inputs: PlanInputs) -> dict[str, int | None]:
    """The forecast's `watch`: sends to catch a tripling with this holdout, and the smallest
    holdout that would within `WATCH_SENDS` sends."""
    return {"holdout_bp": inputs.holdout_bp, "sends_to_catch_x3_unsubscribes": watch_sends(inputs, inputs.holdout_bp),
            "holdout_bp_within_3_sends": smallest_holdout(inputs)}  # fmt: skip


@lru_cache(maxsize=256)
def _simulated_sends(
    *, per_send: float, interval_hours: float, rate: float, p50_hours: float, window_hours: float,
    holdout_bp: int, theta: float, limit: int,
) -> int | None:  # fmt: skip
    share_h = min(max(holdout_bp, 0), BASIS) / BASIS
    n_t, n_c = per_send * (1.0 - share_h), per_send * share_h
    if n_t <= 0 or n_c <= 0 or rate <= 0 or limit <= 0:
        return None
    rng = np.random.default_rng(SEED)
    # the same streams whatever the limit (a search up to 3 sends and the forecast's up to 52 agree)
    horizon = max(limit, HORIZON)
    final_t = rng.poisson(theta * rate * n_t, (DRAWS, horizon))[:, :limit].astype(np.float64)
    final_c = rng.poisson(rate * n_c, (DRAWS, horizon))[:, :limit].astype(np.float64)
    seen_t, seen_c = np.zeros_like(final_t), np.zeros_like(final_c)
    before = np.zeros(limit)  # share of each send's events arrived at the previous look
    caught = np.zeros(DRAWS, dtype=bool)
    threshold = math.log(1.0 / WATCH_ALPHA)
    for k in range(limit):  # the look after send k (its newest send one interval old)
        ages = (k + 1 - np.arange(k + 1)) * interval_hours
        now = np.array([arrival_share(p50_hours, window_hours, a) for a in ages])
        step = np.where(
            before[: k + 1] < 1.0, (now - before[: k + 1]) / np.maximum(1.0 - before[: k + 1], 1e-12), 0.0
        )
        step = np.clip(step, 0.0, 1.0)
        for seen, final in ((seen_t, final_t), (seen_c, final_c)):
            seen[:, : k + 1] += rng.binomial((final[:, : k + 1] - seen[:, : k + 1]).astype(np.int64), step)
        before[: k + 1] = now
        log_e = log_edetectors_rate_ratio(seen_t[:, : k + 1], n_t, seen_c[:, : k + 1], n_c, WATCH_RATIOS)
        caught |= log_e >= threshold
        if caught.mean() >= WATCH_POWER:
            return k + 1
    return None


def watch_words(inputs: PlanInputs) -> str:
    """What the watch after 100% can do with this holdout, in words."""
    holdout = f"{inputs.holdout_bp / 100:g}%"
    seen = watch_sends(inputs, inputs.holdout_bp)
    if seen is not None and seen <= WATCH_SENDS:
        words = f"after that its {holdout} holdout would catch a tripling of unsubscribes within {sends_words(inputs, seen)}"
        smallest = WATCH_HOLDOUTS[0]
        if inputs.holdout_bp > smallest:  # the price of a large holdout, and why it is paid
            slow = watch_sends(inputs, smallest)
            took = f"would take {sends_words(inputs, slow)}" if slow else "would hardly see it"
            words += (
                f" ({holdout} of the audience never gets AI content; a {smallest / 100:g}% holdout {took})"
            )
        return words
    bigger = smallest_holdout(inputs)
    if bigger is not None:
        aside = f" (a {bigger / 100:g}% holdout: within {WATCH_SENDS} sends)"
    else:  # even the largest the planner offers is slower; say how slow
        largest = WATCH_HOLDOUTS[-1]
        at_most = watch_sends(inputs, largest) if largest > inputs.holdout_bp else None
        aside = f" (a {largest / 100:g}% holdout: within {sends_words(inputs, at_most)})" if at_most else ""
    return (
        f"after that its {holdout} holdout would catch a tripling of unsubscribes "
        + (f"within {sends_words(inputs, seen)}" if seen else "only slowly")
        + aside
    )


def sends_words(inputs: PlanInputs, sends: int) -> str:
    """'3 weekly sends', '1 daily send', '4 sends'."""
    every = {168.0: "weekly ", 24.0: "daily "}.get(inputs.cadence.interval_hours, "")
    return f"{sends} {every}send{'s' if sends != 1 else ''}"
