"""`mailramp privacy export|erase|retention` and `mailramp audit export`: a person's data, retention
on demand, and the audit log, from the command line (changes are audited as cli:<user>)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from app.extensions import get_runtime
from campaigns.errors import InputError, NotFound


def init_app(app: Flask) -> None:
    app.cli.add_command(privacy_group)
    app.cli.add_command(audit_group)


@click.group("privacy", cls=AppGroup)
def privacy_group() -> None:
    """A person's data (export, erasure) and retention."""


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    raise SystemExit(1)


@privacy_group.command("export")
@click.argument("contact_id", type=int)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="file (default: stdout)"
)
def export_command(contact_id: int, output: Path | None) -> None:
    """Everything held about one contact, as JSON."""
    from campaigns.privacy import export

    try:
        with get_runtime().session() as session:
            document = export.person_data(session, contact_id)
    except NotFound as exc:
        _fail(exc)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"contact {contact_id}: written to {output}", err=True)


@privacy_group.command("erase")
@click.argument("contact_id", type=int)
@click.option("-r", "--reason", required=True, help="why (the request's reference)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def erase_command(contact_id: int, reason: str, yes: bool) -> None:
    """Erase a contact and everything derived from it (a hash of the address stays suppressed)."""
    from campaigns.privacy import erasure

    if not yes and not click.confirm(f"Erase contact {contact_id} and everything about them?", err=True):
        raise SystemExit(1)
    rt = get_runtime()
    try:
        with rt.session() as session:
            report = erasure.erase_contact(session, rt.redis, contact_id, reason)
    except NotFound as exc:
        _fail(exc)
    click.echo(json.dumps(report.as_dict()))


@privacy_group.command("retention")
@click.option("--events-days", type=int, default=None, help="default: the configured window")
@click.option("--sends-days", type=int, default=None, help="default: the configured window")
def retention_command(events_days: int | None, sends_days: int | None) -> None:
    """Fold and delete raw events and sends older than their windows, now."""
    from campaigns.privacy.retention import apply_retention, bounce_window

    rt = get_runtime()
    sends = rt.settings.retention_sends_days if sends_days is None else sends_days
    with rt.session() as session:
        report = apply_retention(
            session,
            events_days=rt.settings.retention_events_days if events_days is None else events_days,
            sends_days=sends,
            bounces_days=bounce_window(sends, rt.settings.soft_bounce_days),
        )
    click.echo(json.dumps(report.as_dict()))


@click.group("audit", cls=AppGroup)
def audit_group() -> None:
    """The audit log."""


@audit_group.command("export")
@click.option("--actor", default="")
@click.option("--action", default="")
@click.option("--object-type", default="")
@click.option("--object-id", default="")
@click.option("--since", default="", help="ISO date or date-time")
@click.option("--until", default="", help="ISO date or date-time")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="file (default: stdout)"
)
def audit_export(
    actor: str, action: str, object_type: str, object_id: str, since: str, until: str, output: Path | None
) -> None:
    """The audit log as CSV (oldest first); cells never run as spreadsheet formulas."""
    from campaigns.privacy import audit_log

    args = {"actor": actor, "action": action, "object_type": object_type, "object_id": object_id,
            "since": since, "until": until}  # fmt: skip
    try:
        where = audit_log.AuditFilter.parse(args)
    except InputError as exc:
        _fail(InputError(f"--{exc.where}: {exc.message}"))
    lines = audit_log.export_csv(get_runtime().session_factory, where)
    if output is None:
        for chunk in lines:
            sys.stdout.write(chunk)
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            for chunk in lines:
                out.write(chunk)
