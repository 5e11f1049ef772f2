"""Catalog: items a recommendation can show, by category, with imports of items and purchase history."""

from __future__ import annotations

from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db
from app.safe_redirect import local_target
from app.ui.actions import perform
from app.ui.blueprint import ui
from app.ui.imports import ENCODINGS, recent_runs
from app.ui.tables import table_state
from campaigns.catalog import items as engine
from models import Role


@ui.route("/catalog")
@require_role(Role.viewer)
def catalog() -> str:
    q = request.args.get("q", "").strip()
    category = request.args.get("category", "") or None
    table = table_state(tuple(engine.SORTABLE_ITEMS), "name")
    items, total = engine.sorted_items(
        db(), query=q, category=category, sort=table.sort, descending=table.descending,
        offset=table.offset, limit=table.per_page,
    )  # fmt: skip
    table = table.with_total(total)
    if not items and total:  # a page past the end: the last one
        items, _ = engine.sorted_items(db(), query=q, category=category, sort=table.sort,
                                       descending=table.descending, offset=table.offset, limit=table.per_page)  # fmt: skip
    return render_template(
        "ui/catalog.html",
        items=items,
        table=table,
        args={"q": q, "category": category or ""},
        q=q,
        category=category or "",
        categories=engine.categories(db()),
        runs=recent_runs(("items", "interactions")),
        encodings=ENCODINGS,
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
        back=local_target(request.referrer, url_for("ui.catalog"), host=request.host),
    )
