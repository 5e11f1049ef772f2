"""Deliverability records: the bounce and complaint log, and the DKIM keys of the sending domains."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

BOUNCE_KINDS = ("hard", "soft", "complaint")


class Bounce(Base):
    """One bounce or complaint as reported (SMTP reply, DSN, ARF report, ESP webhook)."""

    __tablename__ = "bounces"
    __table_args__ = (sa.Index("ix_bounces_email_kind_created", "email", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    kind: Mapped[str] = mapped_column(sa.String(12))  # hard | soft | complaint
    source: Mapped[str] = mapped_column(
        sa.String(20)
    )  # smtp | dsn | arf | ses | sendgrid | postmark | mailgun
    send_id: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DkimKey(Base):
    """The private key a sending domain signs with; every worker host reads it from here."""

    __tablename__ = "dkim_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    domain: Mapped[str] = mapped_column(sa.String(253), unique=True)
    selector: Mapped[str] = mapped_column(sa.String(63))
    private_key_pem: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
