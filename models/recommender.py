"""The model registry and precomputed recommendations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(40))  # popularity | item_knn | ease | blend ...
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(20), default="training")  # training|ready|failed
    role: Mapped[str] = mapped_column(sa.String(20), default="")  # champion | challenger | ""
    artifact_path: Mapped[str] = mapped_column(sa.String(1000), default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    train_start: Mapped[datetime | None] = mapped_column(default=None)
    train_end: Mapped[datetime | None] = mapped_column(default=None)
    n_rows: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    drift: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trained_by: Mapped[str] = mapped_column(sa.String(320), default="")
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recommendation(Base):
    """Top-N items for one contact from one model version, computed before a send."""

    __tablename__ = "recommendations"

    model_version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    # [{"item_id": 12, "score": 0.9, "reason": "because you bought ..."}]
    items: Mapped[list[Any]] = mapped_column(default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
