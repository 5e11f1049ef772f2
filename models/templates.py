"""Email templates: a layout around a control block and an AI block, all sandboxed Jinja2."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(500), default="")
    layout_html: Mapped[str] = mapped_column(sa.Text, default="{{ content }}")  # must use {{ content }}
    control_html: Mapped[str] = mapped_column(sa.Text, default="")
    ai_html: Mapped[str] = mapped_column(sa.Text, default="")  # loops over {{ recommendations }}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
