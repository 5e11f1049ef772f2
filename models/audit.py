"""The audit log of everything: one append-only table of who changed what, when, before and after.

The database itself refuses UPDATE and DELETE on it (a trigger on PostgreSQL and on SQLite), and it
has no foreign keys, so its rows outlive the objects they describe. Contacts appear in it only under
a pseudonym (see campaigns.privacy.audit), so erasing a person leaves nothing of them here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, utcnow

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION mailramp_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def append_only_ddl(table: str, dialect: str) -> list[str]:
    """The statements that make `table` refuse UPDATE and DELETE (used by the models and migrations)."""
    if dialect == "postgresql":
        return [
            PG_FUNCTION,
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION mailramp_refuse_change()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: UPDATE refused'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: DELETE refused'); END",
    ]


def make_append_only(table: sa.Table) -> None:
    """Attach the triggers to `create_all` of this table (tests and fresh installs without Alembic)."""
    table.info["append_only"] = True
    for dialect in ("postgresql", "sqlite"):
        for statement in append_only_ddl(table.name, dialect):
            ddl = sa.DDL(statement.replace("%", "%%"))  # DDL formats with %
            sa.event.listen(table, "after_create", ddl.execute_if(dialect=dialect))


class AuditEntry(Base):
    """One change: `before` and `after` hold the changed fields only (secrets shown as "<changed>")."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_object", "object_type", "object_id"),
        sa.Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(400), index=True)  # email, "token mr_ab12… of email", system
    via: Mapped[str] = mapped_column(sa.String(20), default="")  # ui | api | cli | worker | signup | system
    action: Mapped[str] = mapped_column(sa.String(40))  # create | update | delete | erase | export | ...
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str] = mapped_column(sa.String(64), default="")  # contacts: a keyed pseudonym
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)


make_append_only(AuditEntry.__table__)  # type: ignore[arg-type]
