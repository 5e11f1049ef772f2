"""`mailramp import ...` and `mailramp demo` through Flask's CLI runner."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from models import Contact, Interaction, Rollout


def test_import_commands_report_rows_and_errors(app: Flask, tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("email,customer_id\na@example.com,17850\nnot-an-email,1\n")
    history = tmp_path / "history.csv"
    history.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26,2.55,17850,United Kingdom\n"
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import", "contacts", str(contacts)])
    assert result.exit_code == 0, result.output
    assert "1 imported, 1 failed, 0 skipped of 2 rows" in result.output
    assert "row 3, email: not an email address" in result.output
    result = runner.invoke(args=["import", "interactions", str(history)])
    assert "1 imported" in result.output
    failed = runner.invoke(args=["import", "items", str(contacts)])
    assert failed.exit_code == 1 and "missing required column sku" in failed.output


def test_demo_command_builds_once(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--synthetic", "--seed", "3", "--no-story"])  # the story: tests/ui
    assert result.exit_code == 0, result.output
    assert "demo workspace from synthetic: 3000 contacts" in result.output
    again = runner.invoke(args=["demo", "--synthetic"])
    assert "already has contacts" in again.output
    with app.extensions["mailramp"].session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 3000
        assert (session.scalar(sa.select(sa.func.count()).select_from(Interaction)) or 0) > 30_000
        assert session.scalar(sa.select(sa.func.count()).select_from(Rollout)) == 0  # --no-story


def test_db_upgrade_migrates_the_configured_instance(tmp_path: Path) -> None:
    """`mailramp db upgrade` migrates the database of MAILRAMP_INSTANCE_PATH, as `mailramp run` uses."""
    from click.testing import CliRunner

    from app.commands import db_group

    result = CliRunner().invoke(
        db_group, ["upgrade"], env={"MAILRAMP_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": None}
    )
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mailramp.db'}")
    with engine.connect() as conn:
        assert "rollouts" in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_remove_demo_asks_then_removes_in_one_step(app: Flask) -> None:
    from app.extensions import db
    from campaigns.demo.workspace import build_demo

    runner = app.test_cli_runner()
    assert "nothing to remove" in runner.invoke(args=["remove-demo", "--yes"]).output
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=100)
        db().commit()
    assert runner.invoke(args=["remove-demo"], input="n\n").exit_code == 1  # asked, refused: kept
    result = runner.invoke(args=["remove-demo"], input="y\n")
    assert result.exit_code == 0 and "demo removed: 100 contacts" in result.output, result.output
    assert "nothing to remove" in runner.invoke(args=["remove-demo", "--yes"]).output
