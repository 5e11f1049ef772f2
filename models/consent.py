"""Consent: each contact's history of granting and withdrawing it, and the hosted signup forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

CONSENT_STATES = ("granted", "pending", "withdrawn")
CONSENT_METHODS = (
    "import",
    "api",
    "ui",
    "signup_form",
    "confirmation_link",
    "unsubscribe",
    "complaint",
    "bounce",
    "suppression",
)


class ConsentRecord(Base):
    """One step of a contact's consent: what, when, how, from where, and the wording they saw."""

    __tablename__ = "consent_records"
    __table_args__ = (sa.Index("ix_consent_records_contact_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(sa.String(12))  # granted | pending | withdrawn
    method: Mapped[str] = mapped_column(sa.String(20))  # see CONSENT_METHODS
    source: Mapped[str] = mapped_column(sa.String(500), default="")  # file and row, form, token, campaign
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(500), default="")
    wording: Mapped[str] = mapped_column(sa.Text, default="")  # the consent text the person was shown
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. an import's evidence column
    actor: Mapped[str] = mapped_column(sa.String(400), default="")


class SignupForm(Base):
    """A hosted signup form (`/s/<slug>`): its consent wording and whether it needs confirmation."""

    __tablename__ = "signup_forms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(60), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    wording: Mapped[str] = mapped_column(sa.Text)  # shown next to the checkbox and stored with consent
    double_opt_in: Mapped[bool] = mapped_column(default=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # set on contacts who sign up
    from_email: Mapped[str] = mapped_column(sa.String(320), default="")
    confirm_subject: Mapped[str] = mapped_column(sa.String(300), default="Please confirm your subscription")
    # plain text of the confirmation email; {{ confirm_url }} and {{ form }} are filled in
    confirm_text: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
