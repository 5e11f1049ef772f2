"""The approvals queue: moves waiting for a second person (four eyes), approved or rejected here."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import actor, current_user, require_role
from app.extensions import db
from app.safe_redirect import local_target
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.errors import InputError
from campaigns.rollout import approvals as four_eyes
from campaigns.rollout.status import where_now
from models import Approval, Role, Rollout


def _role() -> Role:
    user = current_user()
    return user.role_enum if user else Role.viewer


def _reason(required: bool) -> str:
    reason = request.form.get("reason", "").strip()
    if required and not reason:
        raise InputError("say why: the reason goes into the audit log", where="reason")
    return reason


@ui.route("/approvals")
@require_role(Role.viewer)
def approvals() -> str:
    rows = (
        db()
        .execute(
            sa.select(Approval, Rollout)
            .join(Rollout, Rollout.id == Approval.rollout_id)
            .order_by(sa.case((Approval.status == "pending", 0), else_=1), Approval.id.desc())
            .limit(200)
        )
        .all()
    )
    return render_template(
        "ui/approvals.html",
        rows=rows,
        me_email=actor(),
        approval_json=four_eyes.approval_to_json,
    )


def _back() -> str:
    return local_target(request.form.get("next"), url_for("ui.approvals"))


def _where_now(rollout_id: int) -> str:
    rollout = db().get(Rollout, rollout_id)
    return where_now(rollout) if rollout is not None else "gone"


@ui.route("/approvals/<int:approval_id>/approve", methods=["POST"])
@require_role(Role.approver)
def approvals_approve(approval_id: int) -> Response:
    return perform(
        lambda: four_eyes.approve(
            db(),
            approval_id,
            actor(),
            _role(),
            _reason(False),
            override_gates=request.form.get("override_gates") == "on",
        ),
        success=lambda row: f"Approved and applied: the rollout is now {_where_now(row.rollout_id)}.",
        back=_back(),
    )


@ui.route("/approvals/<int:approval_id>/reject", methods=["POST"])
@require_role(Role.approver)
def approvals_reject(approval_id: int) -> Response:
    return perform(
        lambda: four_eyes.reject(db(), approval_id, actor(), _role(), _reason(True)),
        success="Rejected.",
        back=_back(),
    )
