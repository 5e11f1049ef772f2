"""`mailramp rollout ...`: operate rollouts from a shell, including the kill switch.

    mailramp rollout list
    mailramp rollout show ID
    mailramp rollout create NAME [--series S] [--holdout-percent 10] [--settings rollout.json] [--as EMAIL]
    mailramp rollout kill ID --reason "complaints spiking"      # works while Redis and workers are down
    mailramp rollout start|advance|pause|resume|rollback|unkill ID --reason "..."
    mailramp rollout approve APPROVAL_ID --as approver@example.com
    mailramp rollout exclude-segment|include-segment ID SEGMENT_ID --reason "..."   # any state
    mailramp rollout advance ID --override-gates --as approver@example.com -r "..."  # no matured evidence
    mailramp rollout default-plan [--set plan.json --as admin@example.com]
    mailramp rollout audit ID

The actor is `--as EMAIL` (a user's email; their role is checked) or, without it, `cli:$USER`, a
trusted operator with shell access to the database. Four-eyes approvals always need `--as` with a
user holding the approver role.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from pydantic import ValidationError
from sqlalchemy.orm import Session

from campaigns.errors import InputError, NotFound, StateError
from campaigns.rollout import approvals, changes, service
from campaigns.rollout.audit import history
from campaigns.rollout.machine import ApprovalRequired, transition
from campaigns.rollout.status import list_rollouts, rollout_status
from models import Role, User

rollout_group = AppGroup("rollout", help="Staged rollouts: status, transitions, the kill switch.")


@contextmanager
def _session() -> Iterator[Session]:
    from app.extensions import get_runtime

    with get_runtime().session() as session:
        yield session


def _who(session: Session, email: str | None) -> tuple[str, Role | None]:
    if not email:
        return f"cli:{getpass.getuser()}", None
    user = session.scalar(sa.select(User).where(User.email == email.strip().lower(), User.active.is_(True)))
    if user is None:
        raise click.ClickException(f"no active user {email!r}")
    return user.email, user.role_enum


def _run(work: Callable[[Session], Any]) -> Any:
    try:
        with _session() as session:
            return work(session)
    except (StateError, InputError, NotFound) as exc:
        raise click.ClickException(str(exc)) from exc


def _allowed(who: str, role: Role | None, needed: Role, doing: str) -> None:
    """A user named with --as must hold `needed`; the shell's own operator (no --as) is trusted."""
    if role is not None and not role.allows(needed):
        raise click.ClickException(f"{doing} needs the {needed.value} role; {who} is {role.value}")


def _json_file(file: Any) -> Any:
    """A JSON file's value, or a message naming the file and the line where it is not JSON."""
    try:
        return json.load(file)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{file.name}: line {exc.lineno}: {exc.msg}") from exc


_as = click.option("--as", "as_email", default=None, help="act as this user (their role is checked)")
_reason = click.option("--reason", "-r", required=True, help="why: written to the audit log")


@rollout_group.command("list")
def list_command() -> None:
    """Rollouts, newest first."""

    def work(session: Session) -> None:
        for r in list_rollouts(session):
            flag = " KILLED" if r.killed else ""
            click.echo(f"{r.id:>5}  {r.state:<11} stage {r.stage_index:<3} {r.name}{flag}")

    _run(work)


@rollout_group.command("show")
@click.argument("rollout_id", type=int)
def show_command(rollout_id: int) -> None:
    """A rollout's status as JSON."""
    _run(
        lambda s: click.echo(
            json.dumps(rollout_status(s, service.get_rollout(s, rollout_id)), indent=2, default=str)
        )
    )


@rollout_group.command("create")
@click.argument("name")
@click.option(
    "--series", default=None, help="the campaign series sharing this rollout (its cadence sizes the plan)"
)
@click.option(
    "--holdout-percent",
    type=click.FloatRange(0, 50),
    default=None,
    help="the permanent holdout; without it, sized to the audience (5% to 50%)",
)
@click.option(
    "--settings",
    "settings_file",
    type=click.File("r"),
    default=None,
    help="JSON: what POST /api/v1/rollouts takes besides the name (stages, targeting, guardrails, plan, ...)",
)
@_as
def create_command(
    name: str, series: str | None, holdout_percent: float | None, settings_file: Any, as_email: str | None
) -> None:
    """Create a draft rollout on a plan sized to its audience; print its forecast in words, then its id."""
    from app.api.rollouts import RolloutIn
    from app.api.schema import input_error

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        _allowed(who, role, Role.marketer, "creating a rollout")
        raw: Any = {}
        if settings_file is not None:
            raw = _json_file(settings_file)
            if not isinstance(raw, dict):
                raise click.ClickException(f"{settings_file.name}: must be a JSON object")
        flags = {
            "series": series,
            "holdout_bp": None if holdout_percent is None else round(holdout_percent * 100),
        }
        raw = {**raw, **{k: v for k, v in flags.items() if v is not None}, "name": name}
        try:  # the same schema as POST /api/v1/rollouts, so the same errors, naming the field
            body = RolloutIn.model_validate(raw)
        except ValidationError as exc:
            raise input_error(exc) from None
        settings = body.model_dump(exclude_unset=True)
        settings.pop("name")
        if not name.strip():
            raise InputError("a rollout needs a name", where="name")
        rollout = changes.create_rollout(session, name, who, **settings)
        session.commit()
        status = rollout_status(session, rollout)
        words = (status.get("forecast") or {}).get("words")
        holdout = f"holdout {rollout.holdout_bp / 100:g}%"
        click.echo(f"rollout {rollout.id} created (draft, {holdout}): {words or 'no forecast for this plan'}")

    _run(work)


@rollout_group.command("kill")
@click.argument("rollout_id", type=int)
@_reason
@_as
def kill_command(rollout_id: int, reason: str, as_email: str | None) -> None:
    """Kill switch: control content for every contact not yet sent, at once."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        _allowed(who, role, Role.marketer, "kill")
        service.kill(session, rollout_id, who, reason)
        click.echo(f"rollout {rollout_id} killed: control content for everyone not yet sent")

    _run(work)


def _transition_command(action: str, help_text: str) -> None:
    @rollout_group.command(action, help=help_text)
    @click.argument("rollout_id", type=int)
    @_reason
    @_as
    @click.option(
        "--override-gates",
        is_flag=True,
        help="advance although the stage has no matured evidence (needs --as an approver; audited)",
    )
    def command(rollout_id: int, reason: str, as_email: str | None, override_gates: bool) -> None:
        if override_gates and not as_email:
            raise click.ClickException(
                "--override-gates advances without matured evidence: it needs --as EMAIL of an approver"
            )

        def work(session: Session) -> None:
            who, role = _who(session, as_email)
            rollout = service.get_rollout(session, rollout_id)
            try:
                row = transition(
                    session, rollout, action, who, reason, role=role, override_gates=override_gates
                )
            except ApprovalRequired as exc:
                session.rollback()
                rollout = service.get_rollout(session, rollout_id)
                approval = approvals.request_approval(session, rollout, exc.action, who, reason)
                click.echo(
                    f"{exc}; approval {approval.id} requested: an approver runs `mailramp rollout approve {approval.id} --as EMAIL`"
                )
                return
            click.echo(
                f"rollout {rollout_id}: {row.from_state} (stage {row.from_stage}) -> {row.to_state} (stage {row.to_stage})"
            )

        _run(work)


for _action, _help in (
    ("start", "Start: draft -> the first stage."),
    ("advance", "Advance to the next stage (requests an approval when four eyes are needed)."),
    ("pause", "Pause: hold exposure, no advances."),
    ("resume", "Resume a paused rollout."),
    ("rollback", "Roll back: control content for everyone, for good."),
    ("unkill", "Lift the kill switch (approver)."),
):
    _transition_command(_action, _help)


def _segment_command(action: str, help_text: str) -> None:
    @rollout_group.command(action.replace("_", "-"), help=help_text)
    @click.argument("rollout_id", type=int)
    @click.argument("segment_id", type=int)
    @_reason
    @_as
    def command(rollout_id: int, segment_id: int, reason: str, as_email: str | None) -> None:
        from campaigns.decisions.by_hand import set_segment_by_hand
        from campaigns.ops import alerts

        def work(session: Session) -> int:
            who, role = _who(session, as_email)
            rollout = service.get_rollout(session, rollout_id)
            _, decision = set_segment_by_hand(session, rollout, segment_id, action, who, reason, role=role)
            decision_id = int(decision.id)
            session.commit()
            excluded = (rollout.targeting or {}).get("exclude_segments") or []
            click.echo(f"rollout {rollout_id} ({rollout.state}): excluded segments now {excluded}")
            return decision_id

        decision_id = _run(work)
        from app.extensions import get_runtime

        alerts.enqueue_for_decision(get_runtime(), decision_id)


_segment_command("exclude_segment", "Exclude a segment from the rollout, in any state (audited, webhooks).")
_segment_command("include_segment", "Include an excluded segment again (audited, webhooks).")


@rollout_group.command("default-plan")
@click.option(
    "--set",
    "plan_file",
    type=click.File("r"),
    default=None,
    help='JSON: {"stages": [...], "holdout_bp": 500}',
)
@_as
def default_plan_command(plan_file: Any, as_email: str | None) -> None:
    """Show (or set) the workspace's default plan, which every new rollout starts from."""
    from campaigns.rollout import plans

    def work(session: Session) -> None:
        if plan_file is not None:
            who, role = _who(session, as_email)
            _allowed(who, role, Role.admin, "setting the default plan")
            raw = _json_file(plan_file)
            plans.set_workspace_plan(session, raw, who)
            session.commit()
        click.echo(json.dumps(plans.workspace_plan(session), indent=2))

    _run(work)


@rollout_group.command("approve")
@click.argument("approval_id", type=int)
@click.option("--as", "as_email", required=True, help="the approver's email (not the requester)")
@click.option("--reason", "-r", default="", help="why")
@click.option("--override-gates", is_flag=True)
def approve_command(approval_id: int, as_email: str, reason: str, override_gates: bool) -> None:
    """Approve and apply a pending approval."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        assert role is not None
        row = approvals.approve(session, approval_id, who, role, reason, override_gates=override_gates)
        click.echo(
            f"approved: {row.from_state} (stage {row.from_stage}) -> {row.to_state} (stage {row.to_stage})"
        )

    _run(work)


@rollout_group.command("reject")
@click.argument("approval_id", type=int)
@click.option("--as", "as_email", required=True)
@_reason
def reject_command(approval_id: int, as_email: str, reason: str) -> None:
    """Reject a pending approval."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        assert role is not None
        approvals.reject(session, approval_id, who, role, reason)
        click.echo(f"approval {approval_id} rejected")

    _run(work)


@rollout_group.command("rerandomize")
@click.argument("rollout_id", type=int)
@_reason
@_as
def rerandomize_command(rollout_id: int, reason: str, as_email: str | None) -> None:
    """Give the rollout a new salt (new buckets for everyone; draft or paused only)."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        changes.rerandomize(session, service.get_rollout(session, rollout_id), who, reason, role=role)
        click.echo(f"rollout {rollout_id} re-randomized")

    _run(work)


@rollout_group.command("switch-model")
@click.argument("rollout_id", type=int)
@click.argument("model_version_id", type=int)
@_reason
@_as
def switch_model_command(rollout_id: int, model_version_id: int, reason: str, as_email: str | None) -> None:
    """Blue-green: point the rollout at another ready model version."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        changes.switch_model(
            session, service.get_rollout(session, rollout_id), model_version_id, who, reason, role=role
        )
        click.echo(f"rollout {rollout_id} now uses model version {model_version_id}")

    _run(work)


@rollout_group.command("switch-back")
@click.argument("rollout_id", type=int)
@_reason
@_as
def switch_back_command(rollout_id: int, reason: str, as_email: str | None) -> None:
    """Return to the model version live before the last switch."""

    def work(session: Session) -> None:
        who, role = _who(session, as_email)
        row = changes.switch_back(session, service.get_rollout(session, rollout_id), who, reason, role=role)
        click.echo(f"rollout {rollout_id} back on model version {row.evidence['model_version_id']['to']}")

    _run(work)


@rollout_group.command("audit")
@click.argument("rollout_id", type=int)
@click.option("--limit", type=int, default=50)
def audit_command(rollout_id: int, limit: int) -> None:
    """The audit log, newest first."""

    def work(session: Session) -> None:
        service.get_rollout(session, rollout_id)
        for row in history(session, rollout_id, limit):
            stage = (
                f"{row.from_stage}->{row.to_stage}" if row.from_stage != row.to_stage else f"{row.to_stage}"
            )
            click.echo(
                f"{row.at:%Y-%m-%d %H:%M:%S}  {row.actor:<28} {row.action:<16} "
                f"{row.from_state}->{row.to_state} stage {stage}  {row.reason}"
            )

    _run(work)
