"""The `mailramp` command: Flask's CLI plus the platform's own commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def cli() -> None:
    """mailramp: email campaigns whose AI content ships like production code."""


def main() -> None:
    cli()


def _add_commands_without_the_app() -> None:
    """Commands that must work before the app can be built: `db upgrade` on a fresh database (the
    app reads its shared key from a table the migrations create)."""
    from app.commands import db_group

    cli.add_command(db_group)


_add_commands_without_the_app()


@cli.command("run", with_appcontext=False)  # migrates first: a fresh database has no shared key yet
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="rq worker processes")
@click.option(
    "--demo-data", default=None, help="Online Retail CSV(.gz) for the demo workspace, or 'synthetic'"
)
@click.option(
    "--verbose", is_flag=True, help="show every process's log here, not only in instance/mailramp.log"
)
def run_command(host: str, port: int, workers: int, demo_data: str | None, verbose: bool) -> None:
    """Start everything: embedded services if needed, migrations, demo, web, worker, scheduler."""
    import os
    import sys

    from app.supervisor import run

    run(host, port, workers, demo_data, verbose)
    # everything it started has stopped: skip the interpreter's finalization (seconds, with the
    # app's libraries loaded), so a stop stays well inside 10 s
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
