"""audit log owned by a role the application does not use: TRUNCATE and trigger changes refused

PostgreSQL only (SQLite has no roles). The tables `audit_log` and `rollout_audit`, their sequences
and the trigger function `mailramp_refuse_change` move to the NOLOGIN role `mailramp_audit_owner`;
the application's role (the owner of the other tables) keeps SELECT and INSERT. Only the owner may
TRUNCATE, ALTER TABLE ... DISABLE TRIGGER or DROP TRIGGER, so the application's user no longer can.

Creating a role and giving a table away need a superuser (or a role with CREATEROLE that is a member
of the new owner): when the migration runs without that right it changes nothing and says so;
docs/privacy.md gives the SQL for a database administrator.

Revision ID: h21w_1
Revises: h12_1
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "h21w_1"
down_revision = "h12_1"
branch_labels = None
depends_on = None

OWNER = "mailramp_audit_owner"
TABLES = ("audit_log", "rollout_audit")


def owner_statements(app_role: str) -> list[str]:
    """The SQL, for a superuser; `app_role` is the role the application connects as."""
    role = '"' + app_role.replace('"', '""') + '"'
    out = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{OWNER}') THEN "
        f"CREATE ROLE {OWNER} NOLOGIN; END IF; END $$",
        f"ALTER FUNCTION mailramp_refuse_change() OWNER TO {OWNER}",
    ]
    for table in TABLES:
        out += [
            f"ALTER TABLE {table} OWNER TO {OWNER}",  # its sequence and triggers follow
            f"REVOKE ALL ON {table} FROM PUBLIC",
            f"REVOKE ALL ON {table} FROM {role}",
            f"GRANT SELECT, INSERT ON {table} TO {role}",
            f"DO $$ DECLARE s text := pg_get_serial_sequence('{table}', 'id'); BEGIN "
            f"IF s IS NOT NULL THEN EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO %s', s, "
            f"{_literal(role)}); END IF; END $$",
        ]
    return out


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _app_role() -> str:
    bind = op.get_bind()
    owner = bind.exec_driver_sql(
        "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'contacts'"
    ).scalar()
    return str(owner or bind.exec_driver_sql("SELECT current_user").scalar())


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    superuser = bind.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar()
    if not superuser:
        print(
            f"h21w_1: not a superuser: the audit tables stay owned by the application's role; "
            f"see docs/privacy.md to give them to {OWNER}"
        )
        return
    for statement in owner_statements(_app_role()):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    superuser = bind.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar()
    if not superuser:
        return
    role = '"' + _app_role().replace('"', '""') + '"'
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} OWNER TO {role}")
    op.execute(f"ALTER FUNCTION mailramp_refuse_change() OWNER TO {role}")
