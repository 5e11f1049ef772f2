"""Every decision in one sentence a marketer understands (UI, API, alerts); the reasons keep the numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

WORDS = {
    "conversion_rate": "purchases",
    "click_rate": "clicks",
    "open_rate": "opens",
    "revenue_per_recipient": "revenue per recipient",
    "unsubscribe_rate": "unsubscribes",
    "complaint_rate": "spam complaints",
    "bounce_rate": "bounces",
    "send_error_rate": "send errors",
    "render_p95_ms": "rendering time",
}


def _word(name: str) -> str:
    return WORDS.get(name, name.replace("_", " "))


def _pct(x: Any) -> str:
    return f"{float(x):+.1%}" if isinstance(x, int | float) else "n/a"


def _failed(health: Sequence[str]) -> list[str]:
    return [_word(h.split(":", 1)[1]) for h in health if h.startswith(("guardrail:", "cap:"))]


def summary(outcome: str, reasons: Sequence[str], evidence: Mapping[str, Any]) -> str:
    """One plain sentence for a decision (its outcome, reasons and evidence)."""
    health = [str(h) for h in evidence.get("health") or []]
    first = reasons[0] if reasons else ""
    primary = evidence.get("primary") or {}
    metric = _word(str(primary.get("metric") or (evidence.get("config") or {}).get("primary_metric") or "the primary metric"))  # fmt: skip
    lift = (
        f" ({_pct(primary.get('lift'))}, between {_pct(primary.get('lift_low'))} and {_pct(primary.get('lift_high'))})"
        if primary.get("lift") is not None
        else ""
    )
    if outcome == "rollback":
        failed = _failed(health)
        if "watch" in evidence:
            return (f"After reaching everyone, AI content started causing more {' and '.join(failed) or 'harm'} than "
                    "the control content the holdout gets, so it was rolled back: everyone gets the control content.")  # fmt: skip
        if failed:
            return (f"AI content was rolled back: it made {' and '.join(failed)} worse than the control content, "
                    "so everyone gets the control content again.")  # fmt: skip
        return f"AI content was rolled back: {metric} are lower with it than without{lift}."
    if outcome == "pause":
        if "srm" in health:
            return ("Paused: the groups are not the sizes the plan set (sample-ratio mismatch), so no result can be "
                    "trusted until someone checks how contacts are assigned.")  # fmt: skip
        if "stale" in health:
            return "Paused: no tracking events have arrived for too long; tracking may be broken."
        return f"Paused: {first}"
    if outcome == "exclude_segment":
        return (f"Segment {evidence.get('segment')!r} no longer gets AI content: {metric} drop there, while the rest "
                "of the audience is fine and keeps it.")  # fmt: skip
    if outcome == "advance":
        if first and "completing" in " ".join(reasons):
            return (f"Completed: AI content now goes to everyone but the holdout; {metric} are not worse with it{lift}, "
                    "and the guardrails keep watching.")  # fmt: skip
        return (f"Moving to the next stage: {metric} are not worse with AI content{lift} on enough recipients whose "
                "results are in (matured).")  # fmt: skip
    if "watch" in evidence:
        return ("Completed and watched: AI content goes to everyone but the holdout, and unsubscribes, complaints, "
                "bounces and clicks are still compared with the holdout; nothing is wrong so far.")  # fmt: skip
    if first.startswith("not completing on noise"):
        return (f"Not completing yet: the results so far could not have shown a real drop in {metric} or the "
                "guardrails; more sends are needed, or an approver may complete it, recorded as without evidence.")  # fmt: skip
    if first.startswith("the rollout is"):
        return f"Nothing to decide: {first[len('the rollout is ') :].split(':')[0]}."
    if "matured" in first or first.startswith("gates not met"):
        return f"Waiting for more evidence before the next stage: {first}"
    return f"Holding at this stage: {first}" if first else "Holding at this stage."
