"""Reading the audit log: filters (who, what, which object, when) a page at a time, and CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.errors import InputError
from campaigns.privacy.audit import contact_ref
from campaigns.reports.results import csv_lines
from models import AuditEntry

FILTERS = ("actor", "action", "object_type", "object_id", "contact_id", "since", "until", "q")
CSV_COLUMNS = ["id", "at", "actor", "via", "action", "object_type", "object_id", "summary", "before", "after"]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""  # a substring of the summary

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditFilter:
        """From query parameters; `contact_id` is turned into the contact's pseudonym."""
        object_id = args.get("object_id", "").strip()
        object_type = args.get("object_type", "").strip()
        if args.get("contact_id", "").strip():
            raw = args["contact_id"].strip()
            if not raw.isdigit():
                raise InputError(f"contact_id must be an integer, not {raw!r}", where="contact_id")
            object_type, object_id = "contact", contact_ref(int(raw))
        return cls(
            actor=args.get("actor", "").strip(),
            action=args.get("action", "").strip(),
            object_type=object_type,
            object_id=object_id,
            since=_when(args.get("since", ""), "since"),
            until=_when(args.get("until", ""), "until"),
            q=args.get("q", "").strip(),
        )

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.actor:
            out.append(AuditEntry.actor.like(f"%{_escape(self.actor)}%", escape="\\"))
        for column, value in (
            (AuditEntry.action, self.action),
            (AuditEntry.object_type, self.object_type),
            (AuditEntry.object_id, self.object_id),
        ):
            if value:
                out.append(column == value)
        if self.since is not None:
            out.append(AuditEntry.at >= self.since)
        if self.until is not None:
            out.append(AuditEntry.at < self.until)
        if self.q:
            out.append(AuditEntry.summary.ilike(f"%{_escape(self.q)}%", escape="\\"))
        return out

    def as_args(self) -> dict[str, str]:
        values = {
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.q,
        }
        return {k: v for k, v in values.items() if v}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _when(raw: str, where: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{where} must be an ISO date or date-time like 2026-11-29 or 2026-11-29T10:00:00Z, not {raw!r}",
            where=where,
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as `before` for the next (older) page


def search(session: Session, where: AuditFilter, *, before: int = 0, limit: int = 100) -> AuditPage:
    """Newest first, keyset-paged on the id."""
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000", where="limit")
    query = sa.select(AuditEntry).where(*where.conditions())
    if before:
        query = query.where(AuditEntry.id < before)
    rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].id if more and rows else None)


def entry_json(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "via": row.via,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "summary": row.summary,
        "before": row.before,
        "after": row.after,
    }


def export_csv(factory: sessionmaker[Session], where: AuditFilter, chunk: int = 5000) -> Iterator[str]:
    """Oldest first, streamed in chunks; every cell that could start a formula is escaped."""

    def rows() -> Iterator[list[Any]]:
        after = 0
        while True:
            with factory() as session:
                batch = list(
                    session.scalars(
                        sa.select(AuditEntry)
                        .where(AuditEntry.id > after, *where.conditions())
                        .order_by(AuditEntry.id)
                        .limit(chunk)
                    )
                )
            for row in batch:
                yield [
                    row.id,
                    row.at.isoformat(),
                    row.actor,
                    row.via,
                    row.action,
                    row.object_type,
                    row.object_id,
                    row.summary,
                    json.dumps(row.before, sort_keys=True),
                    json.dumps(row.after, sort_keys=True),
                ]
            if len(batch) < chunk:
                return
            after = batch[-1].id

    return csv_lines(CSV_COLUMNS, rows())
