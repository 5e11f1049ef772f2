"""Work a dead process left half done: nothing stays "running" for good.

Run at every worker start and every minute. An import whose rq job is gone or whose worker died ends
`failed` with the reason (the chunks it committed are kept; importing the file again adds only what is
missing, since rows are upserted). A model version left `training` with no live training job ends
`failed` with the reason, so it is never offered, pinned or shown as a champion. Batches of a wave are
resumed by `campaigns.jobs.resume_open_waves`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from rq.registry import StartedJobRegistry

from campaigns.jobs import job_is_live
from campaigns.ops import queues
from campaigns.runtime import Runtime
from models import ImportRun, ModelVersion, utcnow

log = logging.getLogger(__name__)
# An inline import (small uploads, in the web request) has no rq job: it is presumed dead after this.
INLINE_IMPORT_GRACE = timedelta(minutes=30)
# A training version is created by its job just after it starts; younger ones are left alone.
TRAINING_GRACE = timedelta(minutes=2)
IMPORT_STOPPED = (
    "the process importing this file stopped before the end (worker killed or restarted); the rows "
    "committed so far are kept: import the file again to add the rest"
)
TRAINING_STOPPED = "the process training this version stopped before the end (worker killed or restarted)"


def recover_interrupted(rt: Runtime) -> dict[str, int]:
    return {"imports_failed": _fail_dead_imports(rt), "trainings_failed": _fail_dead_trainings(rt)}


def recover_interrupted_job() -> dict[str, int]:
    from campaigns import runtime

    return recover_interrupted(runtime.current())


def _fail_dead_imports(rt: Runtime) -> int:
    q = queues.queue(rt, queues.IMPORTS)
    now = utcnow()
    with rt.session() as session:
        runs = list(session.scalars(sa.select(ImportRun).where(ImportRun.status.in_(("queued", "running")))))
        failed = 0
        for run in runs:
            job = q.fetch_job(f"import-{run.id}")
            if job_is_live(rt, job):
                continue
            if job is None and run.created_at and _aware(run.created_at) > now - INLINE_IMPORT_GRACE:
                continue  # possibly an inline import still running in a web request
            if job is not None and job.get_status(refresh=False) == "finished":
                continue  # finished between our query and the fetch
            run.status, run.finished_at = "failed", now
            run.errors = [*(run.errors or []), {"row": None, "field": "", "error": IMPORT_STOPPED}]
            failed += 1
            log.warning("import %s was interrupted; marked failed", run.id)
        session.commit()
    return failed


def _fail_dead_trainings(rt: Runtime) -> int:
    registry = StartedJobRegistry(
        queues.queue_name(rt.settings.queue_name, queues.TRAINING), connection=rt.redis
    )
    q = queues.queue(rt, queues.TRAINING)
    live = sum(1 for job_id in registry.get_job_ids() if job_is_live(rt, q.fetch_job(job_id)))
    cutoff = utcnow() - TRAINING_GRACE
    with rt.session() as session:
        training = list(
            session.scalars(
                sa.select(ModelVersion)
                .where(ModelVersion.status == "training")
                .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
            )
        )
        # The newest `live` ones may belong to running jobs; the rest have nobody training them.
        failed = 0
        for version in training[live:]:
            if version.created_at and _aware(version.created_at) > cutoff:
                continue
            version.status, version.error = "failed", TRAINING_STOPPED
            if version.role == "champion":
                version.role = ""
            failed += 1
            log.warning("model version %s was left training; marked failed", version.id)
        session.commit()
    return failed


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
