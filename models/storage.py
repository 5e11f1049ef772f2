"""Shared storage every host reads: blobs (model artifacts, uploads) and the instance's shared secret."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Blob(Base):
    """A stored file: its key, size and sha256; the bytes are in `blob_chunks`."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlobChunk(Base):
    """One slice of a blob (at most a few MB, so no row is ever large)."""

    __tablename__ = "blob_chunks"

    key: Mapped[str] = mapped_column(
        sa.String(300), sa.ForeignKey("blobs.key", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class InstanceSecret(Base):
    """A secret every host shares (the signing key when SECRET_KEY is not configured)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
