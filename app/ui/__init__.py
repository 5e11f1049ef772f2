"""The marketer's web UI: one blueprint, one module per area."""

from __future__ import annotations

from flask import Blueprint

ui = Blueprint("ui", __name__, template_folder="../templates")

from app.ui import auth_views, pages  # noqa: E402,F401  (register the views)
