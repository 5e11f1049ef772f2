"""Per-segment decisions: a report segment harmed while the rest is not is set apart, not the rollout.

Each report segment (a country, any saved segment) gets the primary metric's one-sided harm test on
its own matured recipients, at ``harm_alpha / K`` for ``K`` report segments (Bonferroni: the chance
that any unharmed segment is flagged stays below the primary metric's own harm alpha). When a
segment is significantly harmed, the rest of the population (the whole arms minus that segment) is
tested at the full harm alpha:

- the rest is harmed too: no exclusion, the whole-arm test decides (a rollback);
- the rest is not harmed and the two differ (the segment's lift interval lies wholly below the
  rest's): **exclude the segment**, the rollout goes on for the others;
- otherwise the harm may be everywhere and not yet visible in the rest: **hold** the stage (never
  advance on it) until one of the two above becomes true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaigns.decisions.policy import MetricDef
from campaigns.decisions.primary import primary_lift
from campaigns.decisions.snapshot import Evidence, Snapshot

if TYPE_CHECKING:
    from campaigns.stats.lift import LiftTest


@dataclass(frozen=True)
class SegmentFinding:
    evidence: dict[str, Any]
    exclude: str | None = None
    hold: str | None = None
    reason: str = ""


def _brief(test: LiftTest) -> dict[str, Any]:
    return {
        "lift": test.lift,
        "lift_low": test.lift_low,
        "lift_high": test.lift_high,
        "log_e_harm": test.log_e_harm,
        "alpha_harm": test.alpha_harm,
        "worse": test.worse,
    }


def segment_harm(snapshot: Snapshot, whole: Evidence, metric: MetricDef) -> SegmentFinding | None:
    if not snapshot.segments:
        return None
    policy = snapshot.config.policy
    alpha = policy.harm_alpha / len(snapshot.segments)
    out: dict[str, Any] = {}
    harmed: list[tuple[float, str]] = []
    for name, evidence in sorted(snapshot.segments.items()):
        if name in snapshot.excluded_segments:
            out[name] = {"excluded": True}
            continue
        test = primary_lift(snapshot, evidence, metric, alpha)
        out[name] = {**_brief(test), "excluded": False}
        if test.worse:
            harmed.append((test.log_e_harm, name))
    if not harmed:
        return SegmentFinding(out)
    _, name = max(harmed)
    rest = primary_lift(snapshot, whole.minus(snapshot.segments[name]), metric, policy.harm_alpha)
    out[name]["rest"] = _brief(rest)
    if rest.worse:
        return SegmentFinding(out)
    seg = out[name]
    apart = rest.lift_low is not None and seg["lift_high"] is not None and seg["lift_high"] < rest.lift_low
    if not apart:
        reason = (
            f"{metric.name} is significantly worse in segment {name!r} (lift {seg['lift']:+.1%}) but the rest is "
            "not yet shown to differ from it: holding the stage until the harm is seen everywhere or only there"
        )
        return SegmentFinding(out, hold=name, reason=reason)
    reason = (
        f"{metric.name} is significantly worse in segment {name!r} (lift {seg['lift']:+.1%}, at most "
        f"{seg['lift_high']:+.1%}; alpha {alpha:.3g} for {len(snapshot.segments)} segments) and not in the "
        "rest: excluding the segment, the rollout goes on for the others"
    )
    return SegmentFinding(out, exclude=name, reason=reason)
