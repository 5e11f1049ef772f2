"""The platform's own commands on Flask's CLI (`mailramp db|rollout|model|dkim|...`), registered by
`create_app`; the `mailramp` entry point itself is `app.cli`."""

from __future__ import annotations

import click
from flask import Flask

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
    from app.config import database_url, instance_path

    migrate.upgrade(database_url(instance_path()), revision)
    click.echo(f"database at {revision}")
