"""The marketer's web UI: one blueprint, one module per area.

Views are thin: fetch, check the role, call the engine, commit, render. Every page names the least
role it needs (`require_role`); a viewer's POST is refused here before any view runs, so read-only
really is read-only even if a view forgets its decorator.
"""

from __future__ import annotations

from app.ui import (  # register the views and template helpers
    approvals_views,
    audit_views,
    auth_views,
    calendar_views,
    campaigns,
    catalog,
    contacts,
    dashboard,
    demo_views,
    formatting,
    glossary,
    imports,
    models_views,
    navigation,
    outbox,
    reports,
    rollout_settings,
    rollouts,
    segments,
    sending_rules_views,
    signup_forms_views,
    templates_views,
    users,
    webhooks_views,
)
from app.ui.blueprint import ui

__all__ = [
    "approvals_views",
    "audit_views",
    "auth_views",
    "calendar_views",
    "campaigns",
    "catalog",
    "contacts",
    "dashboard",
    "demo_views",
    "formatting",
    "glossary",
    "imports",
    "models_views",
    "navigation",
    "outbox",
    "reports",
    "rollout_settings",
    "rollouts",
    "segments",
    "sending_rules_views",
    "signup_forms_views",
    "templates_views",
    "ui",
    "users",
    "webhooks_views",
]
