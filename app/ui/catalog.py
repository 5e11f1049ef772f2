"""Catalog: items a recommendation can show, by category, with imports of items and purchase history."""

from __future__ import annotations

from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db
from app.ui import ui
from app.ui.actions import arg_int, perform
from app.ui.imports import ENCODINGS, recent_runs
from campaigns import catalog as engine
from models import Role

PAGE_SIZE = 50


@ui.route("/catalog")
@require_role(Role.viewer)
def catalog() -> str:
    q = request.args.get("q", "").strip()
    category = request.args.get("category", "") or None
    after = arg_int("after", 0)
    page = engine.search_items(db(), query=q, category=category, after=after, limit=PAGE_SIZE)
    return render_template(
        "ui/catalog.html",
        page=page,
        q=q,
        category=category or "",
        categories=engine.categories(db()),
        runs=recent_runs(("items", "interactions")),
        encodings=ENCODINGS,
        after=after,
    )


@ui.route("/catalog/<int:item_id>/enabled", methods=["POST"])
@require_role(Role.marketer)
def catalog_enabled(item_id: int) -> Response:
    enabled = request.form.get("enabled") == "1"
    return perform(
        lambda: engine.update_item(db(), item_id, {"enabled": enabled}),
        success=lambda item: (
            f"{item.name or item.sku} is {'shown in' if enabled else 'kept out of'} recommendations."
        ),
        back=request.referrer or url_for("ui.catalog"),
    )
