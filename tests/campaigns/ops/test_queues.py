"""Queues that cannot starve each other, periodic jobs that do not pile up, and interrupted imports
and trainings that end failed with the reason instead of staying "running" for good."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns import jobs
from campaigns.jobs import start_wave
from campaigns.ops import queues
from campaigns.ops.periodic import PeriodicJob, enqueue_unless_pending, periodic_jobs
from campaigns.ops.recovery import IMPORT_STOPPED, TRAINING_STOPPED, recover_interrupted
from campaigns.runtime import Runtime
from models import ImportRun, ModelVersion, utcnow
from tests.factories import add_campaign, add_contacts, add_template
from worker import slots


def test_work_is_routed_to_its_own_queue(app: Any, session: Session) -> None:
    rt: Runtime = app.extensions["mailramp"]
    add_contacts(session, 3)
    campaign = add_campaign(session, add_template(session).id)
    start_wave(rt, campaign.id, None)
    from campaigns.imports.runs import enqueue_import
    from campaigns.recommender.jobs import enqueue_training

    enqueue_training(rt, "popularity")
    run = ImportRun(kind="contacts", filename="x.csv", status="queued", errors=[])
    session.add(run)
    session.commit()
    upload = rt.settings.instance_path / "x.csv"  # the spooled upload, moved to the shared store
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("email\nann@example.com\n")
    enqueue_import(rt, run.id, upload, "contacts")
    depth = {kind: len(queues.queue(rt, kind)) for kind in queues.ALL}
    assert depth == {
        "ingest": 0,
        "sending": 1,
        "scoring": 0,
        "webhooks": 0,
        "default": 0,
        "imports": 1,
        "training": 1,
    }


def test_the_pool_keeps_workers_that_never_take_imports_or_trainings() -> None:
    pool = slots("mailramp", 3)
    assert (
        pool[0]
        == pool[1]
        == ["mailramp:ingest", "mailramp:sending", "mailramp:scoring", "mailramp:webhooks", "mailramp"]
    )
    assert pool[2][-2:] == ["mailramp:imports", "mailramp:training"]  # after the short work
    assert slots("mailramp", 1) == [queues.names("mailramp")]


def test_a_periodic_job_is_not_enqueued_while_its_previous_run_is_queued(app: Any) -> None:
    rt: Runtime = app.extensions["mailramp"]
    ingest = next(j for j in periodic_jobs() if j.func is jobs.ingest_job)
    assert ingest.queue == queues.INGEST
    assert enqueue_unless_pending(rt, ingest) is True
    assert enqueue_unless_pending(rt, ingest) is False
    assert len(queues.queue(rt, queues.INGEST)) == 1
    SimpleWorker(queues.all_queues(rt), connection=rt.redis).work(burst=True, with_scheduler=False)
    assert enqueue_unless_pending(rt, ingest) is True  # the previous run finished


def test_every_periodic_job_has_a_known_queue() -> None:
    declared = periodic_jobs()
    assert all(isinstance(j, PeriodicJob) and j.queue in queues.ALL for j in declared)
    assert len({j.job_id for j in declared}) == len(declared)


def test_interrupted_import_and_training_end_failed_with_the_reason(app: Any, session: Session) -> None:
    rt: Runtime = app.extensions["mailramp"]
    long_ago = utcnow() - timedelta(hours=2)
    queued_without_job = ImportRun(
        kind="contacts", filename="a.csv", status="running", errors=[], created_at=long_ago
    )
    fresh_inline = ImportRun(kind="contacts", filename="b.csv", status="running", errors=[])
    left_training = ModelVersion(name="v", kind="blend", status="training", created_at=long_ago)
    ready = ModelVersion(name="w", kind="blend", status="ready", role="champion", created_at=long_ago)
    session.add_all([queued_without_job, fresh_inline, left_training, ready])
    session.commit()
    # A queued import job is live: left alone.
    live_run = ImportRun(kind="contacts", filename="c.csv", status="queued", errors=[], created_at=long_ago)
    session.add(live_run)
    session.commit()
    from campaigns.imports.runs import enqueue_import

    upload = rt.settings.instance_path / "c.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("email\nann@example.com\n")
    enqueue_import(rt, live_run.id, upload, "contacts")

    assert recover_interrupted(rt) == {"imports_failed": 1, "trainings_failed": 1}
    session.expire_all()
    statuses = dict(session.execute(sa.select(ImportRun.filename, ImportRun.status)).all())
    assert statuses == {"a.csv": "failed", "b.csv": "running", "c.csv": "queued"}
    failed_run = session.scalars(sa.select(ImportRun).where(ImportRun.filename == "a.csv")).one()
    assert failed_run.errors[-1]["error"] == IMPORT_STOPPED
    version = session.get(ModelVersion, left_training.id)
    assert version is not None and (version.status, version.error) == ("failed", TRAINING_STOPPED)
    assert session.get(ModelVersion, ready.id).status == "ready"  # type: ignore[union-attr]
    assert recover_interrupted(rt) == {"imports_failed": 0, "trainings_failed": 0}


def test_a_job_queued_under_its_function_s_former_path_still_runs(app: Any, session: Session) -> None:
    """A job the previous version queued names `campaigns.imports.import_job` (before the move to
    `campaigns.imports.runs`); the worker's job class finds the function where it lives now."""
    from campaigns import blobstore
    from campaigns.imports.runs import upload_key

    rt: Runtime = app.extensions["mailramp"]
    run = ImportRun(kind="contacts", filename="old.csv", status="queued", errors=[])
    session.add(run)
    session.commit()
    upload = rt.settings.instance_path / "old.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("email\nann@example.com\nbob@example.com\n")
    blobstore.put_file(rt.blobs(), upload_key(run.id), upload)
    queue = queues.queue(rt, queues.IMPORTS)
    job = queue.enqueue("campaigns.imports.import_job", run.id, upload_key(run.id), "contacts", "utf-8")
    assert job.func_name == "campaigns.imports.import_job"

    SimpleWorker([queue], connection=rt.redis, job_class=queues.Job).work(burst=True, with_scheduler=False)
    session.expire_all()
    stored = session.get(ImportRun, run.id)
    assert stored is not None and (stored.status, stored.rows_imported) == ("done", 2)


def test_periodic_job_ids_keep_their_former_module_paths() -> None:
    """A periodic run queued before the move still counts as pending after it: same job id."""
    ids = {j.job_id for j in periodic_jobs()}
    assert "periodic-campaigns-evaluation-evaluate_all" in ids
    assert "periodic-campaigns-recovery-recover_interrupted_job" in ids
    assert "periodic-campaigns-jobs-ingest_job" in ids
