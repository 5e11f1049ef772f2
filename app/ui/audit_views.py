"""The audit log of everything: who changed what, when, before and after; filtered, exported as CSV."""

from __future__ import annotations

from flask import render_template, request

from app.auth import require_role
from app.extensions import db
from app.ui.actions import arg_int
from app.ui.blueprint import ui
from campaigns.errors import InputError
from campaigns.privacy import audit_log
from models import Role

PAGE_SIZE = 100


@ui.route("/audit")
@require_role(Role.viewer)
def audit() -> str:
    args = dict(request.args)
    rollout_id = arg_int("rollout", 0)
    if rollout_id:
        args.update(object_type="rollout", object_id=str(rollout_id))
    error = ""
    try:
        where = audit_log.AuditFilter.parse(args)
    except InputError as exc:
        error, where = f"{exc.where}: {exc.message}", audit_log.AuditFilter()
    page = audit_log.search(db(), where, before=arg_int("before", 0), limit=PAGE_SIZE)
    return render_template(
        "ui/audit.html",
        entries=page.entries,
        next_before=page.next_before,
        filters=where.as_args(),
        error=error,
    )
