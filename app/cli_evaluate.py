"""`mailramp rollout evaluate ID`: decide for a rollout now, as the periodic evaluator would.

    mailramp rollout evaluate 3            # evaluate, store, apply, alert; prints the decision
    mailramp rollout evaluate 3 --json     # the decision with its evidence, as JSON
    mailramp rollout evaluate 3 --dry-run  # decide and print, store and apply nothing

The actor in the audit log is ``cli:$USER``.
"""

from __future__ import annotations

import getpass
import json

import click
from flask.cli import with_appcontext

from campaigns.errors import InputError, NotFound, StateError


@click.command("evaluate")
@with_appcontext
@click.argument("rollout_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the decision and its evidence as JSON.")
@click.option("--dry-run", is_flag=True, help="Decide and print; store and apply nothing.")
def evaluate_command(rollout_id: int, as_json: bool, dry_run: bool) -> None:
    """Evaluate a rollout now: health checks, sequential tests, a decision applied through the state machine."""
    from app.extensions import get_runtime
    from campaigns.decisions.evaluation import decision_to_json, evaluate
    from campaigns.ops import alerts

    runtime = get_runtime()
    actor = f"cli:{getpass.getuser()}"
    try:
        with runtime.session() as session:
            decision = evaluate(session, rollout_id, actor=actor)
            shown = decision_to_json(decision)
            if dry_run:
                session.rollback()
        if not dry_run:
            alerts.enqueue_for_decision(runtime, decision.id)
    except (StateError, InputError, NotFound) as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        shown["applied"], shown["id"] = False, None
    if as_json:
        click.echo(json.dumps(shown, indent=2, default=str))
        return
    applied = "applied" if shown["applied"] else "not applied"
    application = (shown.get("evidence") or {}).get("application") or {}
    if application.get("status") == "awaiting_approval":
        applied = f"waiting for an approver (approval {application.get('approval_id')})"
    click.echo(f"rollout {rollout_id}: {shown['outcome']} at stage {shown['stage_index']} ({applied})")
    for reason in shown["reasons"]:
        click.echo(f"  - {reason}")
