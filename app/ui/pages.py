"""Pages. The full UI is built out per area; every view names the role it needs."""

from __future__ import annotations

from flask import render_template

from app.auth import require_role
from app.ui import ui
from models import Role


@ui.route("/")
@require_role(Role.viewer)
def index() -> str:
    return render_template("ui/index.html")
