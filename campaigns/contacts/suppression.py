"""The suppression list: addresses never sent to, contacts or not (hard bounces, complaints, legal
requests, addresses imported from another platform's list). `audience.sendable()` reads it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts.records import normalize_email
from campaigns.errors import InputError, NotFound
from campaigns.imports.stream import ImportReport, Row, SeenKeys, bulk_insert
from campaigns.privacy import consent
from models import Suppression, utcnow

REASONS = ("manual", "unsubscribe", "bounce", "complaint", "import", "deleted", "legal")


def _reason(raw: str, where: str = "reason") -> str:
    reason = raw.strip().lower() or "manual"
    if reason not in REASONS:
        raise InputError(f"reason must be one of {', '.join(REASONS)}, not {raw!r}", where=where)
    return reason


def add_suppression(session: Session, email: str, reason: str = "manual") -> tuple[Suppression, bool]:
    """Suppress an address; returns the row and whether it is new (adding twice is harmless)."""
    address = normalize_email(email)
    reason = _reason(reason)
    row = session.scalar(sa.select(Suppression).where(Suppression.email == address))
    if row is not None:
        return row, False
    row = Suppression(email=address, reason=reason)
    session.add(row)
    session.flush()
    consent.record_suppression(session, address, reason)
    return row, True


def remove_suppression(session: Session, email: str) -> None:
    address = normalize_email(email)
    row = session.scalar(sa.select(Suppression).where(Suppression.email == address))
    if row is None:
        raise NotFound(f"{address} is not on the suppression list")
    session.delete(row)
    session.flush()


def is_suppressed(session: Session, email: str) -> bool:
    address = normalize_email(email)
    return session.scalar(sa.select(Suppression.id).where(Suppression.email == address)) is not None


@dataclass(frozen=True)
class SuppressionPage:
    rows: list[Suppression]
    total: int
    next_after: int | None


def list_suppressions(
    session: Session, *, query: str = "", after: int = 0, limit: int = 100
) -> SuppressionPage:
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000", where="limit")
    conditions = []
    if query.strip():
        escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Suppression.email.like(f"%{escaped}%", escape="\\"))
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Suppression).where(*conditions)) or 0)
    rows = list(
        session.scalars(
            sa.select(Suppression)
            .where(Suppression.id > after, *conditions)
            .order_by(Suppression.id)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return SuppressionPage(rows, total, rows[-1].id if more else None)


class SuppressionImporter:
    """Columns: `email` (required), `reason` (optional, default "import"). Addresses already on the
    list, and repeats within the file, are skipped, not failed."""

    kind = "suppressions"
    tables = ("suppressions",)
    aliases = {"e_mail": "email", "email_address": "email", "mail": "email"}

    def __init__(self) -> None:
        self.seen = SeenKeys()

    def check_header(self, columns: Sequence[str]) -> None:
        if "email" not in columns:
            raise InputError(
                f"missing required column email (the header has: {', '.join(columns)})", where="email"
            )

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        wanted: dict[str, str] = {}
        for row in rows:
            try:
                email = normalize_email(row.values["email"])
                reason = _reason(row.values.get("reason", "") or "import")
            except InputError as exc:
                report.error(row.number, exc.where, exc.message)
                continue
            if self.seen.first_row(email, row.number) is not None:
                report.rows_skipped += 1
                continue
            wanted[email] = reason
        if not wanted:
            return
        present = set(
            session.scalars(sa.select(Suppression.email).where(Suppression.email.in_(list(wanted))))
        )
        now = utcnow()
        new: list[dict[str, Any]] = [
            {"email": e, "reason": r, "created_at": now} for e, r in wanted.items() if e not in present
        ]
        if new:
            bulk_insert(session, Suppression, new)
        report.rows_imported += len(new)
        report.rows_skipped += len(wanted) - len(new)
