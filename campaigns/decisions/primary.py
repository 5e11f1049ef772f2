"""The primary metric's lift on matured recipients, per randomized stage: for the whole arm
(`decide`) and for a report segment or the rest of the audience (`segments`)."""

from __future__ import annotations

from campaigns.decisions.policy import MetricDef
from campaigns.decisions.snapshot import COMPARISON_ARMS, ByStage, Evidence, Snapshot, arm_sum, recipients
from campaigns.stats import Arms
from campaigns.stats.lift import LiftTest
from campaigns.stats.ratio import ratio_lift_test


def randomized_stages(snapshot: Snapshot) -> list[int]:
    last = min(snapshot.stage_index, len(snapshot.stages) - 1)
    return [i for i in range(last + 1) if snapshot.stages[i].kind == "percent"]


def arms_of(snapshot: Snapshot, view: ByStage, metric: MetricDef, arm_names: tuple[str, ...]) -> Arms:
    n, total, sq = [], [], []
    for index in randomized_stages(snapshot):
        arms = view.get(index, {})
        _, t, q = arm_sum(arms, arm_names, metric.numerator)
        n.append(recipients(arms, arm_names, metric))
        total.append(t)
        sq.append(q)
    return Arms(tuple(n), tuple(total), tuple(sq))


def primary_lift(snapshot: Snapshot, evidence: Evidence, metric: MetricDef, alpha_harm: float) -> LiftTest:
    """The primary metric's harm/benefit tests and lift interval on matured recipients."""
    policy = snapshot.config.policy
    view = evidence.view(metric.numerator, policy)
    t = arms_of(snapshot, view, metric, ("treatment",))
    c = arms_of(snapshot, view, metric, COMPARISON_ARMS)
    # the harm test reads the direction that hurts; the interval is on the ratio scale (campaigns.stats.ratio)
    return ratio_lift_test(
        t.n, t.total, t.total_sq, c.n, c.total, c.total_sq, metric.binary,
        alpha_harm=alpha_harm, alpha_benefit=policy.benefit_alpha, smallest=policy.smallest_effect,
        higher_is_better=metric.higher_is_better,
    )  # fmt: skip
