"""The primary metric's early harm test (pure): on every recipient so far, as events arrive.

The matured lift test (`campaigns.stats.lift`) waits for a send's window to pass; a harmful variant
keeps being sent meanwhile. Between randomized arms of one stage, recipients were sent at the same
times, so events that have not arrived yet are missing from both arms alike: where the events so far
fell (treatment or comparison) is unbiased. The exact rate-ratio test of `campaigns.stats.rates`,
with the arms swapped (harm is comparison's rate above treatment's, for a metric where higher is
better), is a supermartingale under "not worse" whatever the order of events, so it may look after
every event. It takes half the primary metric's harm alpha; the matured lift test the other half.
Its mixture is centred on **the harm that matters** (`HARM_PRIMARY`, a 20% drop: a rate ratio of
1.25 in the harmful direction), with half its weight there and a quarter each on half and one and a
half times that drop (`primary_ratios`): a mixture over x1.1 to x5 would charge
log 6 nats of evidence for not knowing the size of the harm, this one log 2 at the harm that matters
(any fixed mixture of harmful ratios is still a supermartingale under "not worse").
A harm that one report segment may explain is left to the matured per-segment test (`confined_to`),
so a harmed segment is excluded rather than the whole rollout rolled back.
Only for 0/1 metrics (conversions, clicks, opens): revenue is not a count of events.
"""

from __future__ import annotations

from typing import Any

from campaigns.decisions.policy import MetricDef
from campaigns.decisions.primary import arms_of
from campaigns.decisions.snapshot import COMPARISON_ARMS, Evidence, Snapshot
from campaigns.stats import rate_ratio_test
from campaigns.stats.rates import RateTest

SHARE = 0.5  # of the harm alpha
HARM_PRIMARY = 0.20  # the relative drop that matters (as `campaigns.decisions.power`)


def primary_ratios(harm: float = HARM_PRIMARY) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The early test's harmful rate ratios and their weights, for relative drops of harm/2, harm
    and 1.5 harm (capped below 100%)."""
    drops = (harm / 2, harm, min(1.5 * harm, 0.9))
    return tuple(1.0 / (1.0 - d) for d in drops), (0.25, 0.5, 0.25)


def early_harm(snapshot: Snapshot, whole: Evidence, metric: MetricDef) -> RateTest | None:
    if not metric.binary:
        return None
    alpha = snapshot.config.policy.harm_alpha * SHARE
    t = arms_of(snapshot, whole.data, metric, ("treatment",))
    c = arms_of(snapshot, whole.data, metric, COMPARISON_ARMS)
    thetas, weights = primary_ratios()
    if metric.higher_is_better:
        return rate_ratio_test(c.total, c.n, t.total, t.n, alpha=alpha, thetas=thetas, weights=weights)
    return rate_ratio_test(t.total, t.n, c.total, c.n, alpha=alpha, thetas=thetas, weights=weights)


def confined_to(snapshot: Snapshot, whole: Evidence, metric: MetricDef) -> str | None:
    """A report segment without which the early harm disappears: the matured per-segment test decides
    whether to exclude it (the early test never rolls back a harm that one segment may explain)."""
    for name, evidence in snapshot.segments.items():
        if name in snapshot.excluded_segments:
            continue
        rest = early_harm(snapshot, whole.minus(evidence), metric)
        if rest is not None and not rest.worse:
            return name
    return None


def lift_confined_to(snapshot: Snapshot, whole: Evidence, metric: MetricDef, alpha: float) -> str | None:
    """The same question for the matured lift test: a report segment without which the rest is not
    significantly worse (the stage holds while the per-segment test decides; it never advances)."""
    from campaigns.decisions.primary import primary_lift

    for name, evidence in snapshot.segments.items():
        if name in snapshot.excluded_segments:
            continue
        if not primary_lift(snapshot, whole.minus(evidence), metric, alpha).worse:
            return name
    return None


def early_json(test: RateTest) -> dict[str, Any]:
    return {**test.to_json(), "on": "every recipient so far (events as they arrive)"}


def early_reason(metric: MetricDef, test: RateTest) -> str:
    treated, compared = (test.rate_control or 0.0, test.rate_treatment) if metric.higher_is_better else (
        test.rate_treatment, test.rate_control or 0.0)  # fmt: skip
    return (
        f"{metric.name} is significantly worse on the events arrived so far: {treated:.3%} in treatment "
        f"against {compared:.3%} in comparison"
    )
