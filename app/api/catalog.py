"""The catalog (items) and a contact's purchase history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request

from app.api.contacts import int_arg
from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db
from campaigns import catalog
from campaigns.contacts import get_contact
from models import Interaction, Item, Role

ITEM_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "description": "the catalog's own id"},
        "name": {"type": "string"},
        "url": {"type": "string"},
        "price": {"type": "number"},
        "image_url": {"type": "string"},
        "category": {"type": "string", "description": "empty: derived from the name"},
        "enabled": {"type": "boolean"},
    },
}


def item_json(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "sku": item.sku,
        "name": item.name,
        "url": item.url,
        "price": item.price,
        "image_url": item.image_url,
        "category": item.category,
        "enabled": item.enabled,
        "created_at": item.created_at.isoformat(),
    }


@route(
    "/items",
    "GET",
    role=Role.viewer,
    summary="Search the catalog",
    query={
        "q": "a substring of sku or name",
        "category": "exact category",
        "after": "last id",
        "limit": "1..1000",
    },
    tag="catalog",
)
def items_list() -> Response:
    page = catalog.search_items(
        db(),
        query=request.args.get("q", ""),
        category=request.args.get("category") or None,
        after=int_arg("after", 0),
        limit=int_arg("limit", 50),
    )
    return jsonify(items=[item_json(i) for i in page.items], total=page.total, next_after=page.next_after)


@route("/items/categories", "GET", role=Role.viewer, summary="Categories with item counts", tag="catalog")
def items_categories() -> Response:
    return jsonify(categories=[{"category": c, "items": n} for c, n in catalog.categories(db())])


@route(
    "/items",
    "POST",
    role=Role.marketer,
    summary="Add an item",
    body={**ITEM_BODY, "required": ["sku"]},
    tag="catalog",
)
def items_create() -> tuple[Response, int]:
    item = catalog.create_item(db(), json_body())
    db().commit()
    return jsonify(item_json(item)), 201


@route("/items/<int:item_id>", "GET", role=Role.viewer, summary="One item", tag="catalog")
def items_get(item_id: int) -> Response:
    return jsonify(item_json(catalog.get_item(db(), item_id)))


@route(
    "/items/<int:item_id>",
    "PATCH",
    role=Role.marketer,
    summary="Change an item (enabled=false keeps it out of recommendations)",
    body=ITEM_BODY,
    tag="catalog",
)
def items_update(item_id: int) -> Response:
    item = catalog.update_item(db(), item_id, json_body())
    db().commit()
    return jsonify(item_json(item))


@route(
    "/contacts/<int:contact_id>/interactions",
    "GET",
    role=Role.viewer,
    summary="A contact's purchases, returns, clicks and views, newest first",
    query={"limit": "1..1000, default 100"},
    tag="catalog",
)
def contact_interactions(contact_id: int) -> Response:
    get_contact(db(), contact_id)
    limit = max(1, min(int_arg("limit", 100), 1000))
    rows = db().execute(
        sa.select(Interaction, Item.sku, Item.name, Item.category)
        .join(Item, Item.id == Interaction.item_id)
        .where(Interaction.contact_id == contact_id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(limit)
    )
    return jsonify(
        interactions=[
            {
                "id": i.id,
                "kind": i.kind,
                "item_id": i.item_id,
                "sku": sku,
                "name": name,
                "category": category,
                "quantity": i.quantity,
                "value": i.value,
                "occurred_at": i.occurred_at.isoformat(),
                "reference": i.reference,
                "source": i.source,
            }
            for i, sku, name, category in rows
        ]
    )
