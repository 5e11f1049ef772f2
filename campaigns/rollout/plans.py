"""Which plan a rollout gets: the workspace's default staged plan, capped at a campaign's exposure.

Every rollout, however it is made (`POST /campaigns` with ``ai``, the campaign form, `POST /rollouts`,
the CLI, the demo), starts from the workspace's default plan (edited under Settings; built in:
1% -> 5% -> 10% -> 25% -> 50% -> 100%, each stage gated on 2,000 matured recipients per arm, with a
5% holdout so even the last stage has a comparison group). A campaign's ``exposure_percent`` is the
cap where the ramp stops (`capped`), not its first step.

**The holdout** (`default_holdout_bp`): one given with the rollout is kept, and so is the workspace's
edited default; otherwise it is sized to the audience like the stages, so that the watch after
100% catches a tripling of unsubscribes within 3 sends (`campaigns.rollout.watch_forecast`: 5% on a
large list, up to 50% on a small one, 5% where even 50% would watch slowly).

A **staged** plan has at least two stages, a gate on recipients for every percent stage and a
comparison group at every stage. Anything else (one stage, no gates, no comparison at 100%) is a
**manual** plan, accepted only when chosen explicitly (``"plan": "manual"``) and marked as such in
the UI and the API; the evaluator still never completes it without matured evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from campaigns.errors import InputError
from campaigns.rollout.stages import BASIS_POINTS, parse_plan, plan_to_json
from models import WorkspaceSetting

PLAN_KINDS = ("staged", "manual")
SETTING_KEY = "default_plan"
DEFAULT_HOLDOUT_BP = 500
DEFAULT_GATES: dict[str, Any] = {"min_recipients_per_arm": 2000}
DEFAULT_EXPOSURES = (100, 500, 1000, 2500, 5000, 10_000)


def builtin_plan() -> dict[str, Any]:
    stages = [
        {"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp, "gates": dict(DEFAULT_GATES)}
        for bp in DEFAULT_EXPOSURES
    ]
    return {"stages": plan_to_json(parse_plan(stages)), "holdout_bp": DEFAULT_HOLDOUT_BP}


def plan_problems(stages: Sequence[Mapping[str, Any]], holdout_bp: int) -> list[str]:
    """Why this plan is not a staged plan (empty: it is one)."""
    parsed = parse_plan(list(stages))
    problems = []
    if len(parsed) < 2:
        problems.append("it has a single stage")
    ungated = [s.name for s in parsed if s.kind == "percent" and s.gates.min_recipients_per_arm <= 0]
    if ungated:
        problems.append(f"stage(s) {', '.join(ungated)} have no gate on recipients")
    if holdout_bp <= 0 and any(s.kind == "percent" and s.exposure_bp >= BASIS_POINTS for s in parsed):
        problems.append("the 100% stage has no comparison group (holdout 0)")
    return problems


def check_plan(stages: Sequence[Mapping[str, Any]], holdout_bp: int, kind: str, where: str = "plan") -> None:
    if kind not in PLAN_KINDS:
        raise InputError(f"must be one of {', '.join(PLAN_KINDS)}, got {kind!r}", where=where)
    problems = plan_problems(stages, holdout_bp)
    if kind == "staged" and problems:
        raise InputError(
            "not a staged plan: " + "; ".join(problems) + ' (choose it explicitly with "plan": "manual")',
            where=where,
        )


def workspace_plan(session: Session) -> dict[str, Any]:
    """{"stages": [...], "holdout_bp": n}: the workspace's default (the built-in one until edited)."""
    row = session.get(WorkspaceSetting, SETTING_KEY)
    if row is None or not row.value:
        return builtin_plan()
    return {"stages": list(row.value["stages"]), "holdout_bp": int(row.value["holdout_bp"])}


def set_workspace_plan(session: Session, raw: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """Validate and store the workspace default; it must be a staged plan."""
    if not isinstance(raw, Mapping):
        raise InputError("must be an object with stages and holdout_bp", where="body")
    unknown = set(raw) - {"stages", "holdout_bp"}
    if unknown:
        raise InputError(f"unknown key(s): {', '.join(sorted(unknown))}", where="body")
    holdout = raw.get("holdout_bp", DEFAULT_HOLDOUT_BP)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout <= BASIS_POINTS // 2:
        raise InputError(f"must be basis points between 0 and {BASIS_POINTS // 2}", where="holdout_bp")
    stages = plan_to_json(parse_plan(raw.get("stages"), "stages"))
    check_plan(stages, holdout, "staged", where="stages")
    value = {"stages": stages, "holdout_bp": holdout}
    row = session.get(WorkspaceSetting, SETTING_KEY)
    if row is None:
        session.add(WorkspaceSetting(key=SETTING_KEY, value=value, updated_by=actor))
    else:
        row.value, row.updated_by = value, actor
    session.flush()
    return value


def capped(stages: Sequence[Mapping[str, Any]], cap_bp: int) -> list[dict[str, Any]]:
    """The plan's ramp stopped at `cap_bp`: stages below the cap, then one stage at the cap (with the
    gates of the first stage at or above it)."""
    parsed = parse_plan(list(stages))
    if cap_bp <= 0:
        raise InputError("must be above 0% (the cap where the ramp stops)", where="exposure_percent")
    kept = [s for s in parsed if s.kind != "percent" or s.exposure_bp < cap_bp]
    above = [s for s in parsed if s.kind == "percent" and s.exposure_bp >= cap_bp]
    gates = (above[0] if above else parsed[-1]).gates.to_json()
    last = {"name": f"{cap_bp / 100:g}%", "kind": "percent", "exposure_bp": cap_bp, "gates": gates}
    return [*plan_to_json(kept), last]


def is_edited(session: Session) -> bool:
    row = session.get(WorkspaceSetting, SETTING_KEY)
    return row is not None and bool(row.value)


def sized_default(
    session: Session,
    campaign: Any,
    *,
    cap_bp: int,
    holdout_bp: int,
    primary_metric: str,
    mode: str | None = None,
    cadence: Any = None,
) -> list[dict[str, Any]]:
    """The default plan for a new rollout: the workspace's edited default (capped) when it has one,
    otherwise a plan sized to the audience (`campaigns.rollout.sizing`)."""
    from campaigns.rollout.plan_inputs import plan_inputs
    from campaigns.rollout.sizing import LADDER, MODES, size_plan

    if mode is not None and mode not in MODES:
        raise InputError(f"must be one of {', '.join(MODES)}, got {mode!r}", where="mode")
    if is_edited(session) or cap_bp <= LADDER[0]:
        return capped(workspace_plan(session)["stages"], cap_bp)
    inputs = plan_inputs(
        session, campaign, primary_metric=primary_metric, holdout_bp=holdout_bp, cap_bp=cap_bp, mode=mode,
        cadence=cadence,
    )  # fmt: skip
    return plan_to_json(parse_plan(size_plan(inputs).stages))


def default_holdout_bp(
    session: Session, campaign: Any, *, primary_metric: str, cap_bp: int = BASIS_POINTS, cadence: Any = None
) -> int:
    """The holdout of a rollout created without one (see the module docstring)."""
    from campaigns.rollout.plan_inputs import plan_inputs
    from campaigns.rollout.watch_forecast import default_holdout

    fallback = int(workspace_plan(session)["holdout_bp"])
    if is_edited(session):
        return fallback
    inputs = plan_inputs(
        session, campaign, primary_metric=primary_metric, holdout_bp=fallback, cap_bp=cap_bp, cadence=cadence
    )
    return default_holdout(inputs, fallback)


def plan_forecast(session: Session, rollout: Any) -> dict[str, Any] | None:
    """The forecast of the rollout's plan on its audience (what the rollout page and the API show)."""
    from campaigns.rollout.forecast import forecast
    from campaigns.rollout.plan_inputs import plan_inputs, rollout_cadence
    from campaigns.rollout.sizing import size_plan

    try:
        stages = plan_to_json(parse_plan(list(rollout.stages or [])))
    except InputError:
        return None
    percent = [s for s in stages if s["kind"] == "percent"]
    cap = percent[-1]["exposure_bp"] if percent else BASIS_POINTS
    inputs = plan_inputs(
        session, None, primary_metric=rollout.primary_metric or "conversion_rate",
        holdout_bp=int(rollout.holdout_bp or 0), cap_bp=max(cap, 1), cadence=rollout_cadence(session, rollout),
    )  # fmt: skip
    sized = size_plan(inputs)
    if percent:  # the mode is not stored: the one whose first gate the plan has (a chosen "learn" on a
        # small list, or the automatic one); a hand-made plan keeps the automatic mode
        gate = int(percent[0]["gates"].get("min_recipients_per_arm") or 0)
        plans = {mode: size_plan(dataclass_replace(inputs, mode=mode)) for mode in ("learn", "protect")}
        firsts = {
            mode: int(plan.stages[0]["gates"]["min_recipients_per_arm"]) for mode, plan in plans.items()
        }
        if gate in firsts.values() and firsts[sized.mode] != gate:
            sized = next(plan for mode, plan in plans.items() if firsts[mode] == gate)
    return forecast(inputs, stages, sized)


def dataclass_replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)
