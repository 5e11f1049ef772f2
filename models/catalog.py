"""Catalog items and interactions (the recommender's training data)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(100), unique=True)  # the catalog's own id (StockCode)
    name: Mapped[str] = mapped_column(sa.String(500), default="")
    url: Mapped[str] = mapped_column(sa.String(2000), default="")
    price: Mapped[float] = mapped_column(sa.Float, default=0.0)
    image_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    category: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Interaction(Base):
    """A purchase, click or view of an item by a contact."""

    __tablename__ = "interactions"
    __table_args__ = (sa.Index("ix_interactions_contact_time", "contact_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="purchase")  # purchase | click | view
    quantity: Mapped[float] = mapped_column(sa.Float, default=1.0)
    value: Mapped[float] = mapped_column(sa.Float, default=0.0)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(sa.String(50), default="import")  # import | campaign:<id>
    reference: Mapped[str | None] = mapped_column(sa.String(100), default=None)  # invoice or event id
