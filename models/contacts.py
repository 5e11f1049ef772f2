"""Contacts, the suppression list, and import runs with their per-row error reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

CONTACT_STATUSES = ("active", "unsubscribed", "bounced", "complained")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(
        sa.String(320), unique=True
    )  # normalized: see campaigns.contacts.records
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    country: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    consent: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="active", index=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)


class Suppression(Base):
    """Addresses never to be sent to, whether or not they are contacts."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    reason: Mapped[str] = mapped_column(sa.String(50), default="manual")
    # why, in words: the SMTP reply of a hard bounce, the soft-bounce count, the complaint's source
    detail: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(Base):
    """One CSV import (contacts, items or interactions): progress and the per-row error report."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # contacts | items | interactions
    filename: Mapped[str] = mapped_column(sa.String(300), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="running")  # queued|running|done|failed
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_imported: Mapped[int] = mapped_column(default=0)
    rows_failed: Mapped[int] = mapped_column(default=0)
    rows_skipped: Mapped[int] = mapped_column(default=0)  # not an error, not imported (no customer id...)
    # [{"row": 12, "field": "email", "error": "not an email address: 'x@'"}], capped in length
    errors: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(sa.String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
