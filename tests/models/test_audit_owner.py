"""The audit log is owned by a role the application does not use (migration h21w_1): connected as
the application's role, INSERT and SELECT work; TRUNCATE, disabling or dropping the append-only
trigger, UPDATE and DELETE are refused. PostgreSQL only."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from models.db import make_engine

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0110_h21w_audit_owner.py"
PASSWORD = "app-role-test-password"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("h21w_audit_owner", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFUSED = [
    "TRUNCATE audit_log",
    "TRUNCATE rollout_audit",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "ALTER TABLE rollout_audit DISABLE TRIGGER rollout_audit_append_only",
    "DROP TABLE audit_log",
    "ALTER FUNCTION mailramp_refuse_change() RENAME TO gone",
    "UPDATE audit_log SET actor = 'someone else'",
    "DELETE FROM audit_log",
]


def test_the_application_role_cannot_truncate_or_disable_the_audit_log(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite has no roles (its append-only triggers are the protection)")
    admin = make_engine(database_url)
    url = sa.make_url(database_url.replace("postgres://", "postgresql://", 1))
    role = f"mailramp_app_{url.database}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
            for table in ("contacts", "audit_log", "rollout_audit"):  # today: the app owns everything
                conn.exec_driver_sql(f"ALTER TABLE {table} OWNER TO {role}")
            conn.exec_driver_sql(f"ALTER FUNCTION mailramp_refuse_change() OWNER TO {role}")
        with admin.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            _migration().upgrade()

        app_engine = make_engine(
            url.set(username=role, password=PASSWORD).render_as_string(hide_password=False)
        )
        try:
            with app_engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO audit_log (at, actor, via, action, object_type, object_id, summary, before, after) "
                    "VALUES (now(), 'app', 'system', 'create', 'campaign', '1', '', '{}', '{}')"
                )
                assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar() == 1
                assert conn.exec_driver_sql("SELECT count(*) FROM rollout_audit").scalar() == 0
            refused = []
            for statement in REFUSED:
                with app_engine.connect() as conn:
                    try:
                        conn.exec_driver_sql(statement)
                    except sa.exc.DBAPIError as exc:
                        refused.append(statement)
                        assert (
                            "must be owner" in str(exc)
                            or "permission denied" in str(exc)
                            or ("append-only" in str(exc))
                        ), str(exc)
                    conn.rollback()
            assert refused == REFUSED
            with app_engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar() == 1
        finally:
            app_engine.dispose()
    finally:
        with admin.begin() as conn:
            for table in ("contacts", "audit_log", "rollout_audit"):
                conn.exec_driver_sql(f"ALTER TABLE {table} OWNER TO CURRENT_USER")
            conn.exec_driver_sql("ALTER FUNCTION mailramp_refuse_change() OWNER TO CURRENT_USER")
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_the_migration_changes_nothing_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        _migration().upgrade()
    engine.dispose()
