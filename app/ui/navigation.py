"""The sidebar: areas in the order a marketer works, each shown only when its page exists and the
user's role may open it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, request

from app.auth import current_user
from app.extensions import db
from app.ui.blueprint import ui
from campaigns.ops import webhooks
from models import Approval, Role


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str
    role: Role
    group: str


NAV = (
    NavLink("ui.index", "Dashboard", Role.viewer, ""),
    NavLink("ui.contacts", "Contacts", Role.viewer, "Audience"),
    NavLink("ui.segments", "Segments", Role.viewer, "Audience"),
    NavLink("ui.catalog", "Catalog", Role.viewer, "Audience"),
    NavLink("ui.signup_forms_page", "Signup forms", Role.viewer, "Audience"),
    NavLink("ui.templates", "Templates", Role.viewer, "Send"),
    NavLink("ui.campaigns", "Campaigns", Role.viewer, "Send"),
    NavLink("ui.calendar", "Calendar", Role.viewer, "Send"),
    NavLink("ui.outbox", "Outbox", Role.viewer, "Send"),
    NavLink("ui.rollouts", "Rollouts", Role.viewer, "Release"),
    NavLink("ui.approvals", "Approvals", Role.viewer, "Release"),
    NavLink("ui.audit", "Audit log", Role.viewer, "Release"),
    NavLink("ui.models", "Models", Role.viewer, "Release"),
    NavLink("ui.users", "Users", Role.admin, "Settings"),
    NavLink("ui.webhooks_page", "Webhooks", Role.viewer, "Settings"),
    NavLink("ui.rollout_plan_settings", "Rollout plan", Role.viewer, "Settings"),
    NavLink("ui.sending_rules_settings", "Sending rules", Role.viewer, "Settings"),
    NavLink("ui.tokens", "API tokens", Role.marketer, "Settings"),
)


def _pending_approvals() -> int:
    return int(db().scalar(sa.select(sa.func.count()).where(Approval.status == "pending")) or 0)


def nav_groups() -> list[tuple[str, list[dict[str, Any]]]]:
    user = current_user()
    if user is None:
        return []
    groups: dict[str, list[dict[str, Any]]] = {}
    endpoint = request.endpoint or ""
    for link in NAV:
        if link.endpoint not in current_app.view_functions or not user.role_enum.allows(link.role):
            continue
        # an area's views share its endpoint as a prefix: ui.contacts_detail belongs to ui.contacts
        active = endpoint == link.endpoint or endpoint.startswith(link.endpoint + "_")
        badge = 0
        if link.endpoint == "ui.approvals":
            badge = _pending_approvals()
        elif link.endpoint == "ui.webhooks_page":
            badge = webhooks.failed_count(db())
        groups.setdefault(link.group, []).append(
            {"endpoint": link.endpoint, "label": link.label, "active": active, "badge": badge}
        )
    return list(groups.items())


@ui.app_context_processor
def _layout_context() -> dict[str, Any]:
    user = current_user()

    def can(role: str) -> bool:
        return user is not None and user.role_enum.allows(Role(role))

    def has_page(endpoint: str) -> bool:
        return endpoint in current_app.view_functions

    runtime = current_app.extensions.get("mailramp")
    simulating = bool(runtime is not None and runtime.settings.simulated_recipients)
    return {"me": user, "can": can, "nav_groups": nav_groups, "has_page": has_page, "simulating": simulating}
