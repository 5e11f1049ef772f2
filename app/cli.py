"""The `mailramp` command: Flask's CLI plus the platform's own commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from app import cli_data, cli_evaluate, cli_model, cli_privacy, migrate
from app.cli_deliverability import dkim_group, inbound_command
from app.cli_rollout import rollout_group


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
    cli_data.init_app(app)
    app.cli.add_command(rollout_group)
    rollout_group.add_command(cli_evaluate.evaluate_command)
    app.cli.add_command(cli_model.model_group)
    cli_privacy.init_app(app)
    app.cli.add_command(dkim_group)
    app.cli.add_command(inbound_command)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations (without building the app: a fresh database has no shared key yet)."""
    from app.config import database_url
    from app.supervisor import instance_path

    migrate.upgrade(database_url(instance_path()), revision)
    click.echo(f"database at {revision}")


def _create_app() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def cli() -> None:
    """mailramp: email campaigns whose AI content ships like production code."""


def main() -> None:
    cli()


@cli.command("run")
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
    from app.supervisor import run

    run(host, port, workers, demo_data, verbose)
