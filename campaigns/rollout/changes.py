"""Audited changes to a rollout's settings (state changes go through `machine.transition` instead).

    create_rollout(session, name, actor, **settings) -> Rollout
    update_rollout(session, rollout, actor, reason, changes, role=None) -> RolloutAudit
    rerandomize(session, rollout, actor, reason, role=None) -> RolloutAudit
    switch_model(session, rollout, model_version_id, actor, reason, role=None) -> RolloutAudit
    switch_back(session, rollout, actor, reason, role=None) -> RolloutAudit

What may change when (so stickiness and the holdout hold):
- the holdout only in draft: it is a fixed bucket range for the rollout's life;
- the plan freely in draft; once started, only the stages after the current one (the path taken so
  far is history), and never in a terminal state;
- `approval_from_bp` and `decision_mode` (the four-eyes settings) need the approver role, and so does
  removing a freeze window; adding one does not;
- the salt only through `rerandomize` (draft or paused; approver once started), with the old salt
  kept in the audit row;
- the model version through `switch_model` (approver; the version must be ready); `switch_back`
  returns to the previous one at once and needs only the marketer role, like the kill switch.
`role=None` means a trusted caller (tests, the CLI run by an operator). The caller commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.errors import InputError, NotFound, StateError
from campaigns.rollout import audit
from campaigns.rollout.evidence import rollout_snapshot
from campaigns.rollout.gates import parse_freeze_windows
from campaigns.rollout.machine import RoleError
from campaigns.rollout.plans import PLAN_KINDS, check_plan, default_holdout_bp, sized_default
from campaigns.rollout.stages import BASIS_POINTS, metric_name, parse_plan, plan_to_json
from campaigns.rollout.targeting import parse_targeting
from models import ModelVersion, Role, Rollout, RolloutAudit

EDITABLE = (
    "name",
    "series",
    "stages",
    "targeting",
    "holdout_bp",
    "primary_metric",
    "guardrails",
    "approval_from_bp",
    "decision_mode",
    "freeze_windows",
    "report_segments",
    "plan",
)
MAX_REPORT_SEGMENTS = 10
TERMINAL = ("completed", "rolled_back")
DECISION_MODES = ("auto", "approval")


def new_salt() -> str:
    """Random per rollout, so two rollouts' assignments are independent."""
    return secrets.token_hex(8)


def _need(role: Role | None, needed: Role, what: str) -> None:
    if role is not None and not role.allows(needed):
        raise RoleError(f"{what} needs the {needed.value} role; you are {role.value}")


def _bp(value: Any, where: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BASIS_POINTS:
        raise InputError(f"must be basis points between 0 and {BASIS_POINTS}, got {value!r}", where=where)
    return value


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise InputError(f"must be text of at most {limit} characters", where=where)
    return value.strip()


def clean_settings(raw: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Validate editable settings; returns JSON-ready values. Unknown keys are an error."""
    unknown = set(raw) - set(EDITABLE)
    if unknown:
        raise InputError(f"unknown setting(s): {', '.join(sorted(unknown))}", where=where or "body")
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        here = prefix + key
        if key == "name":
            out[key] = _text(value, here, 200)
            if not out[key]:
                raise InputError("must not be empty", where=here)
        elif key == "series":
            out[key] = _text(value, here, 200)
        elif key == "stages":
            out[key] = plan_to_json(parse_plan(value, here))
        elif key == "targeting":
            out[key] = parse_targeting(value, here).to_json()
        elif key == "holdout_bp":
            holdout = _bp(value, here)
            if holdout is not None and holdout > BASIS_POINTS // 2:
                raise InputError("a holdout above 50% leaves too little to ramp", where=here)
            out[key] = holdout
        elif key == "approval_from_bp":
            out[key] = _bp(value, here, optional=True)
        elif key == "primary_metric":
            out[key] = metric_name(value, here)
        elif key == "guardrails":
            if not isinstance(value, Mapping):
                raise InputError('must be an object such as {"unsubscribe_rate": {...}}', where=here)
            for name in value:
                metric_name(name, f"{here}.{name}")
            out[key] = dict(value)
        elif key == "decision_mode":
            if value not in DECISION_MODES:
                raise InputError(f"must be one of {', '.join(DECISION_MODES)}", where=here)
            out[key] = value
        elif key == "freeze_windows":
            out[key] = [w.to_json() for w in parse_freeze_windows(value, here)]
        elif key == "plan":
            if value not in PLAN_KINDS:
                raise InputError(f"must be one of {', '.join(PLAN_KINDS)}, got {value!r}", where=here)
            out[key] = value
        elif key == "report_segments":
            ids = value if isinstance(value, list) else None
            if (
                ids is None
                or len(ids) > MAX_REPORT_SEGMENTS
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            ):
                raise InputError(f"must be a list of at most {MAX_REPORT_SEGMENTS} segment ids", where=here)
            out[key] = sorted(set(ids))
    return out


def create_rollout(session: Session, name: str, actor: str, **settings: Any) -> Rollout:
    """A draft with a fresh salt; `settings` are EDITABLE keys plus `model_version_id`."""
    model_version_id = settings.pop("model_version_id", None)
    clean = clean_settings({"name": name, **settings})
    if "holdout_bp" not in clean:  # sized so the watch after 100% can catch a tripling of unsubscribes
        clean["holdout_bp"] = default_holdout_bp(
            session, None, primary_metric=clean.get("primary_metric") or "conversion_rate"
        )
    if "stages" not in clean:  # sized to the workspace's sendable audience (or its edited default)
        clean["stages"] = sized_default(
            session, None, cap_bp=BASIS_POINTS, holdout_bp=clean["holdout_bp"],
            primary_metric=clean.get("primary_metric") or "conversion_rate",
        )  # fmt: skip
    clean.setdefault("plan", "staged")
    check_plan(clean["stages"], clean["holdout_bp"], clean["plan"])
    clean.setdefault("targeting", parse_targeting({}).to_json())
    if model_version_id is not None:
        _ready_model(session, model_version_id)
    rollout = Rollout(
        salt=new_salt(), state="draft", created_by=actor, model_version_id=model_version_id, **clean
    )
    session.add(rollout)
    session.flush()
    audit.record(
        session,
        rollout,
        "create",
        actor,
        "created",
        from_state="",
        to_state="draft",
        from_stage=None,
        to_stage=0,
        evidence={"settings": clean, "model_version_id": model_version_id},
    )
    return rollout


def _check_plan(rollout: Rollout, new: list[dict[str, Any]]) -> None:
    if rollout.state == "draft":
        return
    old = plan_to_json(parse_plan(list(rollout.stages or [])))
    keep = rollout.stage_index + 1
    if len(new) < keep or new[:keep] != old[:keep]:
        raise StateError(
            f"stages 0..{rollout.stage_index} have already run and cannot change; edit only the stages after it"
        )


def _check_freeze(rollout: Rollout, new: list[dict[str, Any]], role: Role | None) -> None:
    old = {tuple(sorted(w.to_json().items())) for w in parse_freeze_windows(rollout.freeze_windows)}
    kept = {tuple(sorted(w.items())) for w in new}
    if old - kept:
        _need(role, Role.approver, "removing a freeze window")


def update_rollout(
    session: Session,
    rollout: Rollout,
    actor: str,
    reason: str,
    changes: Mapping[str, Any],
    *,
    role: Role | None = None,
) -> RolloutAudit:
    actor, reason = audit.require_words(actor, reason)
    _need(role, Role.marketer, "editing a rollout")
    session.refresh(rollout, with_for_update=True)
    clean = clean_settings(changes)
    if not clean:
        raise InputError("nothing to change", where="body")
    excluded_only = _exclusions_only(rollout, clean)
    if excluded_only is not None:
        return _apply_exclusions(session, rollout, actor, reason, excluded_only, role)
    if rollout.state in TERMINAL:
        raise StateError(
            f"a {rollout.state} rollout cannot be edited (excluding or including segments still works)"
        )
    if "holdout_bp" in clean and clean["holdout_bp"] != rollout.holdout_bp and rollout.state != "draft":
        raise StateError("the holdout is fixed once the rollout has started")
    if "stages" in clean:
        _check_plan(rollout, clean["stages"])
    if {"stages", "holdout_bp", "plan"} & set(clean):
        check_plan(
            clean.get("stages", rollout.stages),
            clean.get("holdout_bp", rollout.holdout_bp),
            clean.get("plan", rollout.plan or "staged"),
        )
    if {"approval_from_bp", "decision_mode"} & set(clean):
        _need(role, Role.approver, "changing the approval settings")
    if "freeze_windows" in clean:
        _check_freeze(rollout, clean["freeze_windows"], role)
    diff = {
        key: {"from": getattr(rollout, key), "to": value}
        for key, value in clean.items()
        if getattr(rollout, key) != value
    }
    for key, value in clean.items():
        setattr(rollout, key, value)
    return audit.record_in_place(
        session,
        rollout,
        "edit",
        actor,
        reason,
        evidence={"changes": diff},
    )


def _exclusions_only(rollout: Rollout, clean: Mapping[str, Any]) -> tuple[set[int], set[int]] | None:
    """(added, removed) exclude_segments when that is the whole change, else None."""
    if set(clean) != {"targeting"}:
        return None
    old, new = dict(rollout.targeting or {}), dict(clean["targeting"])
    before = {int(i) for i in old.pop("exclude_segments", None) or []}
    after = {int(i) for i in new.pop("exclude_segments", None) or []}
    if parse_targeting(old).to_json() != parse_targeting(new).to_json() or before == after:
        return None
    return after - before, before - after


def _apply_exclusions(
    session: Session,
    rollout: Rollout,
    actor: str,
    reason: str,
    change: tuple[set[int], set[int]],
    role: Role | None,
) -> RolloutAudit:
    from campaigns.decisions.by_hand import set_segment_by_hand

    row: RolloutAudit | None = None
    for action, ids in (("exclude_segment", change[0]), ("include_segment", change[1])):
        for segment_id in sorted(ids):
            row, _ = set_segment_by_hand(session, rollout, segment_id, action, actor, reason, role=role)
    assert row is not None
    return row


def rerandomize(
    session: Session, rollout: Rollout, actor: str, reason: str, *, role: Role | None = None
) -> RolloutAudit:
    """A new salt: every contact gets a new bucket (new treatment, control and holdout sets)."""
    actor, reason = audit.require_words(actor, reason)
    session.refresh(rollout, with_for_update=True)
    if rollout.state not in ("draft", "paused"):
        raise StateError(f"re-randomize only a draft or paused rollout, not a {rollout.state} one")
    _need(role, Role.marketer if rollout.state == "draft" else Role.approver, "re-randomizing")
    old = rollout.salt
    rollout.salt = new_salt()
    return audit.record_in_place(
        session,
        rollout,
        "rerandomize",
        actor,
        reason,
        evidence={"salt": {"from": old, "to": rollout.salt}},
    )


def _ready_model(session: Session, model_version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise NotFound(f"model version {model_version_id} does not exist")
    if version.status != "ready":
        raise StateError(f"model version {model_version_id} is {version.status}, not ready")
    return version


def _switch(
    session: Session, rollout: Rollout, to: int | None, actor: str, reason: str, action: str
) -> RolloutAudit:
    before = rollout_snapshot(rollout)
    old = rollout.model_version_id
    rollout.previous_model_version_id, rollout.model_version_id = old, to
    return audit.record_in_place(
        session,
        rollout,
        action,
        actor,
        reason,
        evidence={"model_version_id": {"from": old, "to": to}, "snapshot": {"before": before}},
    )


def switch_model(
    session: Session,
    rollout: Rollout,
    model_version_id: int,
    actor: str,
    reason: str,
    *,
    role: Role | None = None,
) -> RolloutAudit:
    """Blue-green: point the rollout's treatment at another ready model version; the old one is kept
    as `previous_model_version_id` for `switch_back`."""
    actor, reason = audit.require_words(actor, reason)
    _need(role, Role.approver, "switching the model version")
    session.refresh(rollout, with_for_update=True)
    if rollout.state == "rolled_back":
        raise StateError("a rolled back rollout sends no AI content; there is nothing to switch")
    _ready_model(session, model_version_id)
    if model_version_id == rollout.model_version_id:
        raise StateError(f"model version {model_version_id} is already live")
    return _switch(session, rollout, model_version_id, actor, reason, "switch_model")


def switch_back(
    session: Session, rollout: Rollout, actor: str, reason: str, *, role: Role | None = None
) -> RolloutAudit:
    """Instant return to the version live before the last switch (no readiness check: it was live;
    it may be None, the registry's champion)."""
    actor, reason = audit.require_words(actor, reason)
    _need(role, Role.marketer, "switching back")
    session.refresh(rollout, with_for_update=True)
    last = session.scalar(
        sa.select(RolloutAudit)
        .where(
            RolloutAudit.rollout_id == rollout.id, RolloutAudit.action.in_(("switch_model", "switch_back"))
        )
        .order_by(RolloutAudit.id.desc())
        .limit(1)
    )
    if last is None:
        raise StateError("the model version was never switched; there is nothing to switch back to")
    return _switch(session, rollout, last.evidence["model_version_id"]["from"], actor, reason, "switch_back")
