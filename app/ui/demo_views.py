"""The demo on the dashboard: a notice while its story replays, and its removal in one step (admins;
audited by campaigns.demo.remove)."""

from __future__ import annotations

from flask import url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from campaigns.demo.remove import Removal, demo_present, remove_demo
from campaigns.jobs import demo_story_replaying
from models import Role


def demo_state() -> dict[str, bool]:
    """What the dashboard shows about the demo: whether it is there, whether its story replays."""
    present = demo_present(db())
    return {"present": present, "replaying": present and demo_story_replaying(get_runtime())}


def _removed(removal: Removal) -> str:
    return f"The demo is removed ({removal.total} rows: its contacts, campaigns, rollouts and their data)."


@ui.route("/demo/remove", methods=["POST"])
@require_role(Role.admin)
def demo_remove() -> Response:
    return perform(lambda: remove_demo(db()), success=_removed, back=url_for("ui.index"))
