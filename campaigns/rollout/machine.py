"""The rollout state machine: the ONLY way a rollout's state, stage or kill switch changes.

    transition(session, rollout, action, actor, reason, evidence=None, *,
               role=None, approval=None, override_gates=False, now=None, observation=None) -> RolloutAudit

States and actions (anything else raises `campaigns.errors.StateError`)::

    draft    --start-->    shadow (stage 0 is shadow/dark) | ramping (stage 0 is internal/beta/percent)
    shadow   --advance-->  shadow | ramping (stage k+1)    ramping --advance--> ramping (k+1)
    shadow | ramping at the last stage --advance--> completed   (only on powered evidence, see below)
    shadow | ramping --pause--> paused --resume--> shadow | ramping (same stage, same exposure)
    shadow | ramping | paused | completed --rollback--> rolled_back   (terminal: everyone control)
    any state --kill--> same state, killed      (everyone control at once; `is_killed` sees it)
    killed (not rolled_back) --unkill--> same state, not killed   (needs the approver role)

A kill is a switch, not a state: resuming a killed, paused rollout leaves it killed; only unkill
lifts it. A stage's time (the min_duration gate) counts from entering it, pauses included.

Rules checked here, in this order: the action exists and is valid from the current state; the
caller's `role` (None: a trusted system caller such as the evaluator) is at least `ACTION_ROLES`;
a killed rollout cannot advance or start; freeze windows block start and advance; an advance needs
its stage's gates met on matured recipients (or `override_gates=True` by someone with the approver
role, with a reason: the audit row records it; `role=None` is a trusted in-process caller, and the
CLI asks for ``--as`` an approver); a completion, of any plan, manual included, counts as a gate not
met unless the primary metric and the guardrails had the power to see the harm that matters
(`campaigns.decisions.power`): only an approver may then complete, and the audit row says
"completed without evidence"; an advance or start to
a target exposure above `rollout.approval_from_bp` (or any when `decision_mode == "approval"`) needs
an `approval` decided by someone other than its requester (`ApprovalRequired` otherwise; see
`campaigns.rollout.approvals`).

Every call appends one `RolloutAudit` row (who, when, from, to, why and an evidence snapshot: the
caller's `evidence` merged with ``{"snapshot": ...}`` holding gates, exposure and settings). The
caller commits (the kill switch in `service.kill` commits itself).

For the statistics helper, an automatic decision is::

    audit = transition(session, rollout, "advance" | "pause" | "rollback", actor="evaluator",
                       reason="primary metric ... ", evidence={"decision_id": d.id, ...})

catching `ApprovalRequired` (then call `approvals.request_approval(...)`) and `StateError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from campaigns.errors import NotFound, StateError
from campaigns.rollout import audit
from campaigns.rollout.evidence import observe, rollout_snapshot
from campaigns.rollout.gates import GateObservation, active_freeze, parse_freeze_windows, unmet_gates
from campaigns.rollout.stages import BASIS_POINTS, Stage, parse_plan
from models import Approval, Role, Rollout, RolloutAudit, Segment, utcnow

ACTIONS = ("start", "advance", "pause", "resume", "rollback", "kill", "unkill")
ACTION_ROLES: dict[str, Role] = {
    "start": Role.marketer,
    "advance": Role.marketer,
    "pause": Role.marketer,
    "resume": Role.marketer,
    "rollback": Role.marketer,
    "kill": Role.marketer,
    "unkill": Role.approver,
}
_FROM: dict[str, tuple[str, ...]] = {
    "start": ("draft",),
    "advance": ("shadow", "ramping"),
    "pause": ("shadow", "ramping"),
    "resume": ("paused",),
    "rollback": ("shadow", "ramping", "paused", "completed"),
    "kill": ("draft", "shadow", "ramping", "paused", "completed", "rolled_back"),
    "unkill": ("draft", "shadow", "ramping", "paused", "completed"),
}


class RoleError(StateError):
    """The caller's role is too low for this action (the API answers 403)."""


class ApprovalRequired(StateError):
    """This move needs a second person: request an approval, then an approver applies it."""

    def __init__(self, message: str, action: str, target_stage: int) -> None:
        super().__init__(message)
        self.action = action
        self.target_stage = target_stage


def _state_at(stage: Stage) -> str:
    return "shadow" if stage.is_shadow else "ramping"


def exposure_after(rollout: Rollout, stages: tuple[Stage, ...], target_stage: int) -> int:
    """Basis points of eligible contacts receiving AI content at a target (len(stages): completed)."""
    if target_stage >= len(stages):
        return BASIS_POINTS
    stage = stages[target_stage]
    return 0 if stage.is_shadow else stage.exposure_bp


def target_of(rollout: Rollout, action: str, stages: tuple[Stage, ...]) -> tuple[str, int]:
    """(state, stage_index) the action leads to; StateError when it is not valid from here.

    For an advance from the last stage the index is len(stages) (completion); the row keeps the last.
    """
    if action not in ACTIONS:
        raise StateError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    state, index = rollout.state, rollout.stage_index
    if state not in _FROM[action]:
        allowed = ", ".join(a for a in ACTIONS if state in _FROM[a] and (a != "unkill" or rollout.killed))
        raise StateError(
            f"cannot {action} a rollout that is {state}; from {state} you may: {allowed or 'nothing'}"
        )
    if action == "start":
        return _state_at(stages[0]), 0
    if action == "advance":
        if index + 1 >= len(stages):
            return "completed", len(stages)
        return _state_at(stages[index + 1]), index + 1
    if action == "pause":
        return "paused", index
    if action == "resume":
        return _state_at(stages[min(index, len(stages) - 1)]), index
    if action == "rollback":
        return "rolled_back", index
    if action == "unkill" and not rollout.killed:
        raise StateError("the rollout is not killed")
    return state, index  # kill, unkill: the state stays; the switch changes


def needs_approval(rollout: Rollout, action: str, exposure_bp: int) -> bool:
    if action not in ("start", "advance"):
        return False
    if rollout.decision_mode == "approval":
        return True
    return rollout.approval_from_bp is not None and exposure_bp > rollout.approval_from_bp


def _check_approval(
    rollout: Rollout, action: str, target: int, approval: Approval | None, actor: str
) -> dict[str, Any]:
    if approval is None:
        raise ApprovalRequired(
            f"{action} to stage {target} needs an approver (four eyes): request an approval",
            action=action,
            target_stage=target,
        )
    problems = []
    if approval.rollout_id != rollout.id or approval.action != action or approval.target_stage != target:
        problems.append(f"the approval is for {approval.action} to stage {approval.target_stage}")
    if approval.status != "approved":
        problems.append(f"the approval is {approval.status}")
    if not approval.decided_by or approval.decided_by.lower() == approval.requested_by.lower():
        problems.append("the approver must be someone other than the requester")
    if approval.decided_by and approval.decided_by.lower() != actor.lower():
        problems.append("only the approver can apply the approval")
    if problems:
        raise StateError("; ".join(problems))
    return {"id": approval.id, "requested_by": approval.requested_by, "approved_by": approval.decided_by}


def transition(
    session: Session,
    rollout: Rollout,
    action: str,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    *,
    role: Role | None = None,
    approval: Approval | None = None,
    override_gates: bool = False,
    now: datetime | None = None,
    observation: GateObservation | None = None,  # the evaluator passes one read from the aggregates
) -> RolloutAudit:
    """Apply one action (see the module docstring); returns the audit row it appended."""
    actor, reason = audit.require_words(actor, reason)
    now = now or utcnow()
    session.refresh(rollout, with_for_update=True)  # the latest row, locked until the caller commits
    stages = parse_plan(list(rollout.stages or []))
    to_state, to_stage = target_of(rollout, action, stages)
    if role is not None and not role.allows(ACTION_ROLES[action]):
        raise RoleError(f"{action} needs the {ACTION_ROLES[action].value} role; you are {role.value}")
    snapshot: dict[str, Any] = {"before": rollout_snapshot(rollout)}
    if action in ("start", "advance"):
        if rollout.killed:
            raise StateError(f"the rollout is killed: unkill it before you {action}")
        freeze = active_freeze(parse_freeze_windows(rollout.freeze_windows), now)
        if freeze is not None:
            raise StateError(
                f"a freeze window blocks {action} until {freeze.end.isoformat()}"
                + (f" ({freeze.why})" if freeze.why else "")
            )
        exposure = exposure_after(rollout, stages, to_stage)
        snapshot["exposure_bp"] = {"from": _current_exposure(rollout, stages), "to": exposure}
        if action == "advance":
            observed = observation if observation is not None else observe(session, rollout, now)
            unmet = unmet_gates(stages[rollout.stage_index].gates, observed, now)
            if not any(observed.recipients_per_arm.values()):
                unmet.append("no recipient of this stage has matured yet")
            if to_state == "completed":  # no completion on noise (campaigns.decisions.power)
                from campaigns.decisions.completion import completion_problems

                noise = completion_problems(session, rollout, now)
                if noise:
                    unmet.append("it would be completed without evidence: " + "; ".join(noise))
                    snapshot["completed_without_evidence"] = bool(override_gates)
                    reason = f"completed without evidence: {reason}" if override_gates else reason
            snapshot["gates"] = {
                "observed": observed.to_json(),
                "unmet": unmet,
                "overridden": bool(unmet and override_gates),
                "matured_only": True,
            }
            if unmet and not override_gates:
                raise StateError(
                    f"gates of stage {stages[rollout.stage_index].name!r} not met on matured recipients: "
                    + "; ".join(unmet)
                    + " (an approver may advance anyway, with a reason)"
                )
            if unmet and role is not None and not role.allows(Role.approver):
                raise RoleError(
                    "advancing a stage without matured evidence needs an approver (the approver role, "
                    "and a reason): " + "; ".join(unmet)
                )
        if needs_approval(rollout, action, exposure):
            snapshot["approval"] = _check_approval(rollout, action, to_stage, approval, actor)
    from_state, from_stage = rollout.state, rollout.stage_index
    if action == "kill":
        rollout.killed, rollout.killed_at = True, now
    elif action == "unkill":
        rollout.killed = False
    rollout.state = to_state
    if (to_stage < len(stages) and to_stage != from_stage) or action == "start":
        rollout.stage_index, rollout.stage_started_at = to_stage, now
    snapshot["after"] = rollout_snapshot(rollout)
    return audit.record(
        session,
        rollout,
        action,
        actor,
        reason,
        from_state=from_state,
        to_state=to_state,
        from_stage=from_stage,
        to_stage=min(to_stage, len(stages) - 1) if to_state == "completed" else to_stage,
        evidence={**(evidence or {}), "snapshot": snapshot},
        now=now,
    )


def _current_exposure(rollout: Rollout, stages: tuple[Stage, ...]) -> int:
    if rollout.state in ("draft", "rolled_back"):
        return 0
    if rollout.state == "completed":
        return BASIS_POINTS
    return exposure_after(rollout, stages, rollout.stage_index)


SEGMENT_ACTIONS = ("exclude_segment", "include_segment")


def set_segment(
    session: Session,
    rollout: Rollout,
    segment_id: int,
    action: str,
    actor: str,
    reason: str,
    evidence: dict[str, Any] | None = None,
    *,
    role: Role | None = None,
    now: datetime | None = None,
) -> RolloutAudit:
    """Exclude a segment from the rollout (its members get control content from the next chunk on)
    or include it again. Allowed in every state, completed and rolled back included: setting a
    segment apart only ever narrows exposure, and undoing it is the same audited move. The state and
    stage do not change; the targeting's ``exclude_segments`` does."""
    if action not in SEGMENT_ACTIONS:
        raise StateError(f"unknown action {action!r}; one of {', '.join(SEGMENT_ACTIONS)}")
    actor, reason = audit.require_words(actor, reason)
    now = now or utcnow()
    if role is not None and not role.allows(Role.marketer):
        raise RoleError(f"{action} needs the marketer role; you are {role.value}")
    if session.get(Segment, segment_id) is None:
        raise NotFound(f"segment {segment_id} does not exist")
    session.refresh(rollout, with_for_update=True)
    targeting = dict(rollout.targeting or {})
    excluded = [int(i) for i in targeting.get("exclude_segments") or []]
    if action == "exclude_segment":
        if segment_id in excluded:
            raise StateError(f"segment {segment_id} is excluded already")
        excluded.append(segment_id)
    else:
        if segment_id not in excluded:
            raise StateError(f"segment {segment_id} is not excluded")
        excluded.remove(segment_id)
    before = rollout_snapshot(rollout)
    targeting["exclude_segments"] = sorted(excluded)
    rollout.targeting = targeting
    return audit.record_in_place(
        session,
        rollout,
        action,
        actor,
        reason,
        evidence={
            **(evidence or {}),
            "segment_id": segment_id,
            "snapshot": {"before": before, "exclude_segments": sorted(excluded)},
        },
        now=now,
    )
