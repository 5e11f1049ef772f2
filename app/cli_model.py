"""`mailramp model ...`: the recommender's registry and offline evaluation from the command line.

mailramp model evaluate [--data PATH]       # the Online Retail time split, every model, as a table
mailramp model train --kind blend           # train a version now (or --queue it on a worker)
mailramp model list                          # versions, roles, metrics
mailramp model show 3                        # one version as JSON (params, window, metrics, drift)
mailramp model promote 3 [--role challenger] # champion by default; pinned rollouts keep theirs
mailramp model drift 3                       # re-measure drift against today's contacts and catalog
mailramp model score 3 CONTACT_ID            # what a version would recommend, nothing stored
"""

from __future__ import annotations

import getpass
import json
from typing import Any

import click
from flask.cli import with_appcontext

from campaigns.errors import InputError, NotFound, StateError


@click.group("model")
def model_group() -> None:
    """Recommender models: offline evaluation, training, registry, drift."""


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@model_group.command("evaluate")
@click.option(
    "--data",
    "data_path",
    default=None,
    help="online_retail.csv.gz (default: $MAILRAMP_DEMO_DATA or ../shared/data)",
)
@click.option("--k", default=10, show_default=True, help="Cut-off of the ranking metrics.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def evaluate_command(data_path: str | None, k: int, as_json: bool) -> None:
    """Offline evaluation: train before 2011-09-01, test after, every model."""
    from campaigns.recommender.evaluation import (
        PRODUCTION,
        STRONG_BASELINES,
        TARGET_RATIO,
        format_table,
        online_retail_report,
    )

    try:
        report = online_retail_report(data_path, k)
    except FileNotFoundError as exc:
        raise _fail(exc) from exc
    ratio, best = report.ratio()
    strong_ratio, strongest = report.ratio(STRONG_BASELINES)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "split": report.split,
                    "customers": report.customers,
                    "models": {
                        r.name: {**r.metrics.as_dict(), "fit_s": round(r.fit_seconds, 2)}
                        for r in report.results
                    },
                    "production_over_best_baseline": round(ratio, 3),
                    "best_baseline": best,
                    "production_over_strongest_baseline": round(strong_ratio, 3),
                    "strongest_baseline": strongest,
                }
            )
        )
        return
    click.echo(
        f"Online Retail, train before {report.split}, test after; {report.customers} customers with "
        f"purchases on both sides; repeat purchases allowed.\n"
    )
    click.echo(format_table(report.results))
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    click.echo(
        f"\n{PRODUCTION}: NDCG@{k} {ratio:.2f}x the best reference baseline ({best}); "
        f"{verdict} the {TARGET_RATIO}x target."
    )
    click.echo(f"{PRODUCTION}: NDCG@{k} {strong_ratio:.2f}x the strongest baseline here ({strongest}).")


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@model_group.command("train")
@with_appcontext
@click.option(
    "--kind", default="blend", show_default=True, help="popularity | repeat | item_knn | ease | blend"
)
@click.option(
    "--param", "param_pairs", multiple=True, help="An estimator parameter, key=value (JSON values)."
)
@click.option("--window-days", type=int, default=None, help="Train on the last N days only.")
@click.option("--queue", "on_worker", is_flag=True, help="Enqueue on a worker instead of training here.")
@click.option("--no-evaluate", is_flag=True, help="Skip the holdout metrics.")
def train_command(
    kind: str, param_pairs: tuple[str, ...], window_days: int | None, on_worker: bool, no_evaluate: bool
) -> None:
    """Train a new model version from the interactions table."""
    from datetime import timedelta

    from app.extensions import get_runtime
    from campaigns.recommender import jobs, training
    from models import utcnow

    runtime = get_runtime()
    params = _params(param_pairs)
    if on_worker:
        job_id = jobs.enqueue_training(runtime, kind, params, _actor(), window_days)
        click.echo(f"training queued as job {job_id}")
        return
    end = utcnow()
    start = end - timedelta(days=window_days) if window_days else None
    try:
        with runtime.session() as session:
            version = training.train(
                session,
                runtime.blobs(),
                kind,
                params,
                _actor(),
                start,
                end,
                evaluate=not no_evaluate,
            )
            click.echo(
                f"model version {version.id} ({version.kind}) ready as {version.role or 'no role'}: "
                f"{version.n_rows} interactions, metrics {json.dumps(version.metrics)}"
            )
    except (InputError, StateError) as exc:
        raise _fail(exc) from exc


@model_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every model version, newest first."""
    from app.extensions import get_runtime
    from campaigns.recommender import registry

    with get_runtime().session() as session:
        rows = registry.versions(session)
        click.echo(
            f"{'id':>4}  {'kind':<11} {'status':<9} {'role':<10} {'rows':>8}  {'NDCG@10':>8}  drift     trained by"
        )
        for v in rows:
            ndcg = v.metrics.get("ndcg_at_10")
            click.echo(
                f"{v.id:>4}  {v.kind:<11} {v.status:<9} {v.role or '-':<10} {v.n_rows:>8}  "
                f"{ndcg if ndcg is not None else '-':>8}  {(v.drift or {}).get('level', '-'):<9} {v.trained_by}"
            )


@model_group.command("show")
@with_appcontext
@click.argument("version_id", type=int)
def show_command(version_id: int) -> None:
    """One version as JSON."""
    from app.api.models_api import version_json
    from app.extensions import get_runtime
    from campaigns.recommender import registry

    with get_runtime().session() as session:
        try:
            version = registry.get(session, version_id)
        except NotFound as exc:
            raise _fail(exc) from exc
        click.echo(
            json.dumps(version_json(version, registry.pinned_by(session, version_id)), indent=2, default=str)
        )


@model_group.command("promote")
@with_appcontext
@click.argument("version_id", type=int)
@click.option(
    "--role", type=click.Choice(["champion", "challenger", "none"]), default="champion", show_default=True
)
def promote_command(version_id: int, role: str) -> None:
    """Make a version the champion (or challenger). Rollouts that pinned a version keep it."""
    from app.extensions import get_runtime
    from campaigns.recommender import registry

    try:
        with get_runtime().session() as session:
            version = registry.promote(session, version_id, "" if role == "none" else role)
            click.echo(f"model version {version.id} is now {version.role or 'without a role'}")
    except (InputError, StateError, NotFound) as exc:
        raise _fail(exc) from exc


@model_group.command("drift")
@with_appcontext
@click.argument("version_id", type=int)
def drift_command(version_id: int) -> None:
    """Re-measure a version's drift against today's contacts and catalog, store and print it."""
    from app.extensions import get_runtime
    from campaigns.recommender import drift, registry

    try:
        with get_runtime().session() as session:
            report = drift.record(session, registry.get(session, version_id))
    except (StateError, NotFound) as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(report, indent=2))


@model_group.command("score")
@with_appcontext
@click.argument("version_id", type=int)
@click.argument("contact_id", type=int)
@click.option("--limit", default=6, show_default=True)
def score_command(version_id: int, contact_id: int, limit: int) -> None:
    """What a version would recommend to a contact now (nothing is stored or sent)."""
    from app.extensions import get_runtime
    from campaigns.recommender.service import score_contact

    try:
        with get_runtime().session() as session:
            recs = score_contact(session, version_id, contact_id, limit)
    except (StateError, NotFound) as exc:
        raise _fail(exc) from exc
    for rank, rec in enumerate(recs, 1):
        click.echo(
            f"{rank:>2}. {rec.sku:<10} {rec.name[:40]:<40} {rec.price:>8.2f}  {rec.score:.3f}  {rec.reason}"
        )
