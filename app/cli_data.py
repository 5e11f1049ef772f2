"""`mailramp import contacts|items|interactions|suppressions FILE`, `mailramp demo` and
`mailramp remove-demo`."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.extensions import get_runtime


def init_app(app: Flask) -> None:
    app.cli.add_command(import_group)
    app.cli.add_command(demo_command)
    app.cli.add_command(remove_demo_command)
    app.cli.add_command(export_group)


@click.group("export", cls=AppGroup)
def export_group() -> None:
    """Export data for warehouses and analytics tools."""


@export_group.command("events")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["ndjson", "parquet"]), default="ndjson", show_default=True
)
@click.option("--since", default="", help="ISO 8601: events that occurred at or after this time")
@click.option("--until", default="", help="ISO 8601: events that occurred before this time")
@click.option("--after", default="0", help="the cursor: events whose id is greater (printed by the last run)")
@click.option("--kind", default="", help="comma-separated event kinds")
@click.option("--limit", default="", help="at most this many events")
def export_events_command(
    path: Path, fmt: str, since: str, until: str, after: str, kind: str, limit: str
) -> None:
    """Raw events to PATH (NDJSON or Parquet), streamed; prints the cursor to resume from."""
    from campaigns.errors import InputError
    from campaigns.events import export as event_export

    try:
        rng = event_export.parse_range(
            {"since": since, "until": until, "after": after, "kind": kind, "limit": limit}
        )
    except InputError as exc:
        raise click.UsageError(str(exc)) from exc
    progress = event_export.Progress()
    with path.open("wb") as out:
        for chunk in event_export.stream(get_runtime().session_factory, rng, fmt, progress):
            out.write(chunk)
    click.echo(f"{progress.rows} events written to {path}; next cursor: --after {progress.last_id}")


@click.group("import", cls=AppGroup)
def import_group() -> None:
    """Import CSV files (plain or gzip): every good row is imported, bad rows are reported."""


def _run(kind: str, path: Path, encoding: str, show: int) -> None:
    from campaigns.imports import runs as imports
    from campaigns.imports.stream import start_run

    rt = get_runtime()
    with rt.session() as session:
        run_id = start_run(session, kind, path.name, "cli", status="running").id
    started = time.perf_counter()
    run = imports.import_file(rt.session_factory, run_id, path, kind, encoding)
    seconds = time.perf_counter() - started
    click.echo(
        f"import {run.id} ({kind}) {run.status}: {run.rows_imported} imported, {run.rows_failed} failed, "
        f"{run.rows_skipped} skipped of {run.rows_total} rows in {seconds:.1f} s"
    )
    for error in (run.errors or [])[:show]:
        where = f"row {error['row']}" + (f", {error['field']}" if error.get("field") else "")
        click.echo(f"  {where}: {error['error']}", err=True)
    if run.rows_failed > show:
        click.echo(f"  ... {run.rows_failed - show} more (see GET /api/v1/imports/{run.id})", err=True)
    if run.status == "failed":
        raise SystemExit(1)


def _import_command(kind: str, help_text: str) -> None:
    @import_group.command(kind, help=help_text)
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--encoding", default="utf-8", show_default=True, help="the file's text encoding")
    @click.option("--show-errors", default=20, show_default=True, help="how many row errors to print")
    def command(file: Path, encoding: str, show_errors: int) -> None:
        _run(kind, file, encoding, show_errors)


_import_command(
    "contacts",
    "Contacts: email (required), name, country, timezone, consent, status, external_id, attributes.",
)
_import_command("items", "Catalog items: sku or id (required), name, url, price, image, category.")
_import_command(
    "interactions", "Purchase history in the Online Retail shape (or email/customer_id, sku, occurred_at)."
)
_import_command("suppressions", "Addresses never to send to: email (required), reason.")


@click.command("demo")
@with_appcontext
@click.option(
    "--data",
    "data_path",
    default=None,
    help="online_retail.csv.gz (default: MAILRAMP_DEMO_DATA, else ../shared/data/online_retail.csv.gz)",
)
@click.option("--synthetic", is_flag=True, help="use the seeded generator even when the real data is there")
@click.option("--force", is_flag=True, help="add the demo even when the workspace has contacts")
@click.option("--seed", default=20111209, show_default=True)
@click.option("--story/--no-story", default=True, show_default=True,
              help="replay the story: a staged AI rollout and a rolled-back one, with simulated recipients")  # fmt: skip
def demo_command(data_path: str | None, synthetic: bool, force: bool, seed: int, story: bool) -> None:
    """Build the demo workspace: contacts, catalog, purchase history, segments, a template and the story."""
    from campaigns.demo.workspace import build_demo

    rt = get_runtime()
    if synthetic:
        data_path = None
    elif data_path is None:
        data_path = rt.settings.demo_data_path or default_demo_data()
    started = time.perf_counter()
    with rt.session() as session:
        summary = build_demo(session, data_path, seed=seed, force=force)
    seconds = time.perf_counter() - started
    if summary.source == "existing":
        click.echo("the workspace already has contacts: demo not built (use --force to add it anyway)")
        return
    click.echo(
        f"demo workspace from {summary.source}: {summary.contacts} contacts, {summary.items} items, "
        f"{summary.interactions} interactions, {len(summary.segments)} segments, "
        f"template {summary.template!r} in {seconds:.1f} s"
    )
    if story:
        from campaigns.demo.story import build_story

        started = time.perf_counter()
        with rt.session() as session:
            told = build_story(session, rt)
        states = ", ".join(f"{name}: {state}" for name, state in told.rollouts.items())
        click.echo(f"demo story with simulated recipients: {states} ({time.perf_counter() - started:.1f} s)")


@click.command("remove-demo")
@with_appcontext
@click.option("--yes", is_flag=True, help="remove without asking")
def remove_demo_command(yes: bool) -> None:
    """Remove the demo in one step: its contacts, campaigns, rollouts, events, items, segments and
    template (users are kept; the audit log records the removal)."""
    from campaigns.demo.remove import demo_present, remove_demo

    rt = get_runtime()
    with rt.session() as session:
        if not demo_present(session):
            click.echo("no demo in this workspace: nothing to remove")
            return
    if not yes:
        click.confirm("remove the demo's contacts, campaigns and rollouts for good?", abort=True)
    with rt.session() as session:
        removal = remove_demo(session)
    parts = ", ".join(f"{n} {table}" for table, n in sorted(removal.rows.items()))
    click.echo(f"demo removed: {parts or 'nothing left'}")


def default_demo_data() -> str | None:
    """../shared/data/online_retail.csv.gz beside the checkout, when it is there."""
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "online_retail.csv.gz"
    return str(candidate) if candidate.is_file() else None
