"""Report segments set apart by hand (in every state), and the workspace's default rollout plan.

Excluding or including a segment goes through the state machine (`campaigns.rollout.machine`,
audited), is stored as a decision and sent to the webhooks after the commit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.responses_rollouts import DefaultPlan, RolloutStatus
from app.api.schema import ApiModel, Reason
from app.api.spec import route
from app.auth import actor, current_user
from app.extensions import db, get_runtime
from campaigns.decisions.by_hand import set_segment_by_hand
from campaigns.errors import InputError
from campaigns.ops import alerts
from campaigns.rollout import plans, service
from campaigns.rollout.status import rollout_status
from models import Decision, Role

TAG = "rollouts"


class ReasonIn(ApiModel):
    reason: Reason


class DefaultPlanIn(ApiModel):
    stages: list[dict[str, Any]] = Field(min_length=1, max_length=50)
    holdout_bp: int | None = Field(None, ge=0, le=10_000)


def acting_role() -> Role:
    """The signed-in user's role (a viewer's when nobody is)."""
    user = current_user()
    return user.role_enum if user else Role.viewer


def required_reason(reason: str) -> str:
    """The reason a change by hand needs: refused when blank."""
    if not reason.strip():
        raise InputError("say why: a reason is required", where="reason")
    return reason


def last_decision_id(rollout_id: int) -> int:
    return int(db().scalar(sa.select(sa.func.max(Decision.id)).where(Decision.rollout_id == rollout_id)) or 0)


def enqueue_decisions_after(rollout_id: int, before: int) -> None:
    """Webhook deliveries of decisions made by hand in this request (after the commit)."""
    ids = db().scalars(sa.select(Decision.id).where(Decision.rollout_id == rollout_id, Decision.id > before))
    for decision_id in list(ids):
        alerts.enqueue_for_decision(get_runtime(), int(decision_id))


def _segment_move(rollout_id: int, segment_id: int, action: str, body: ReasonIn) -> Response:
    reason = required_reason(body.reason)
    rollout = service.get_rollout(db(), rollout_id)
    _, decision = set_segment_by_hand(db(), rollout, segment_id, action, actor(), reason, role=acting_role())
    decision_id = int(decision.id)
    db().commit()
    alerts.enqueue_for_decision(get_runtime(), decision_id)
    return jsonify(rollout_status(db(), rollout))


@route(
    "/rollouts/<int:rollout_id>/segments/<int:segment_id>/exclude",
    "POST",
    role=Role.marketer,
    summary="Exclude a segment from the rollout (any state, completed included; audited, webhooks)",
    body=ReasonIn,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_exclude_segment(rollout_id: int, segment_id: int, body: ReasonIn) -> Response:
    return _segment_move(rollout_id, segment_id, "exclude_segment", body)


@route(
    "/rollouts/<int:rollout_id>/segments/<int:segment_id>/include",
    "POST",
    role=Role.marketer,
    summary="Include an excluded segment again (undoes an exclusion; audited, webhooks)",
    body=ReasonIn,
    tag=TAG,
    response=RolloutStatus,
)
def rollouts_include_segment(rollout_id: int, segment_id: int, body: ReasonIn) -> Response:
    return _segment_move(rollout_id, segment_id, "include_segment", body)


@route(
    "/settings/default-plan",
    "GET",
    role=Role.viewer,
    summary="The workspace's default rollout plan",
    tag=TAG,
    response=DefaultPlan,
)
def default_plan_get() -> Response:
    return jsonify(plans.workspace_plan(db()))


@route(
    "/settings/default-plan",
    "PUT",
    role=Role.admin,
    summary="Set the workspace's default plan (must be a staged plan: gates, a comparison group)",
    body=DefaultPlanIn,
    tag=TAG,
    response=DefaultPlan,
)
def default_plan_put(body: DefaultPlanIn) -> Response:
    value = plans.set_workspace_plan(db(), body.model_dump(exclude_none=True), actor())
    db().commit()
    return jsonify(value)
