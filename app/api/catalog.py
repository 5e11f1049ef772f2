"""The catalog (items) and a contact's purchase history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.contacts import PageQuery
from app.api.responses import CategoryList, ItemOut, ItemPage
from app.api.responses_people import InteractionList
from app.api.schema import ApiModel, QueryModel
from app.api.spec import route
from app.extensions import db
from campaigns.catalog import items as catalog
from campaigns.contacts.records import get_contact
from models import Interaction, Item, Role


class ItemPatch(ApiModel):
    sku: str | None = Field(None, max_length=200, description="the catalog's own id")
    name: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=2000)
    price: float | None = Field(None, ge=0, le=1e12)
    image_url: str | None = Field(None, max_length=2000)
    category: str | None = Field(None, max_length=200, description="empty: derived from the name")
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class ItemIn(ItemPatch):
    sku: str = Field(max_length=200, description="the catalog's own id")


class ItemSearch(PageQuery):
    q: str = Field("", max_length=500, description="a substring of sku or name")
    category: str | None = Field(None, max_length=200, description="exact category")


class LimitQuery(QueryModel):
    limit: int = Field(100, ge=1, le=1000)


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
    query=ItemSearch,
    tag="catalog",
    response=ItemPage,
)
def items_list(query: ItemSearch) -> Response:
    page = catalog.search_items(
        db(), query=query.q, category=query.category or None, after=query.after, limit=query.limit
    )
    return jsonify(items=[item_json(i) for i in page.items], total=page.total, next_after=page.next_after)


@route(
    "/items/categories",
    "GET",
    role=Role.viewer,
    summary="Categories with item counts",
    tag="catalog",
    response=CategoryList,
)
def items_categories() -> Response:
    return jsonify(categories=[{"category": c, "items": n} for c, n in catalog.categories(db())])


@route(
    "/items",
    "POST",
    role=Role.marketer,
    summary="Add an item",
    body=ItemIn,
    tag="catalog",
    status=201,
    response=ItemOut,
)
def items_create(body: ItemIn) -> tuple[Response, int]:
    item = catalog.create_item(db(), body.changes())
    db().commit()
    return jsonify(item_json(item)), 201


@route("/items/<int:item_id>", "GET", role=Role.viewer, summary="One item", tag="catalog", response=ItemOut)
def items_get(item_id: int) -> Response:
    return jsonify(item_json(catalog.get_item(db(), item_id)))


@route(
    "/items/<int:item_id>",
    "PATCH",
    role=Role.marketer,
    summary="Change an item (enabled=false keeps it out of recommendations)",
    body=ItemPatch,
    tag="catalog",
    response=ItemOut,
)
def items_update(item_id: int, body: ItemPatch) -> Response:
    item = catalog.update_item(db(), item_id, body.changes())
    db().commit()
    return jsonify(item_json(item))


@route(
    "/contacts/<int:contact_id>/interactions",
    "GET",
    role=Role.viewer,
    summary="A contact's purchases, returns, clicks and views, newest first",
    query=LimitQuery,
    tag="catalog",
    response=InteractionList,
)
def contact_interactions(contact_id: int, query: LimitQuery) -> Response:
    get_contact(db(), contact_id)
    limit = query.limit
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
