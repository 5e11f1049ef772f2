"""/metrics: process counters (added up over processes in multiprocess mode) and the installation's
state read at scrape time: queue depth per queue, ingest lag, events per arm, decisions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker

from campaigns.events.ingest import ingest
from campaigns.events.tracking import RawEvent, push
from campaigns.jobs import start_wave
from campaigns.ops import queues
from campaigns.ops.queues import all_queues
from models import Decision, Send
from tests.factories import add_campaign, add_catalog, add_contacts, add_template

ROOT = Path(__file__).resolve().parents[2]


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_follow_a_wave_from_queue_to_decisions(app: Flask, client: FlaskClient, session: Any) -> None:
    rt = app.extensions["mailramp"]
    before = scrape(client)
    add_catalog(session, add_contacts(session, 30))
    campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50, "plan": "manual"})
    start_wave(rt, campaign.id, None)
    queued = scrape(client)
    scoring = queues.queue_name(rt.settings.queue_name, queues.SCORING)
    sending = queues.queue_name(rt.settings.queue_name, queues.SENDING)
    assert queued[("mailramp_queue_jobs", (("queue", scoring), ("state", "queued")))] >= 1  # the scoring job
    assert queued[("mailramp_queue_jobs", (("queue", sending), ("state", "deferred")))] >= 1  # batches wait

    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    sent = scrape(client)
    key = ("mailramp_emails_sent_total", ())
    assert sent[key] - before.get(key, 0.0) == 30
    assert all(
        sent[("mailramp_queue_jobs", (("queue", q.name), ("state", "queued")))] == 0 for q in all_queues(rt)
    )
    arms = {labels: v for (n, labels), v in sent.items() if n == "mailramp_arm_events_total"}
    assert sum(v for labels, v in arms.items() if ("metric", "sent") in labels) == 30
    assert {dict(labels)["arm"] for labels in arms} >= {"treatment", "control"}

    # one open waits in the stream: backlog 1 and a lag; ingested, both go back to 0
    first = session.query(Send).first()
    push(rt.redis, RawEvent(kind="open", send_id=first.id, at=1.0))
    waiting = scrape(client)
    assert waiting[("mailramp_ingest_backlog_events", ())] == 1
    assert waiting[("mailramp_ingest_lag_seconds", ())] >= 0
    ingest(rt)
    done = scrape(client)
    assert (
        done[("mailramp_ingest_backlog_events", ())] == 0 and done[("mailramp_ingest_lag_seconds", ())] == 0
    )

    session.add(Decision(rollout_id=campaign.rollout_id, outcome="hold", applied=True))
    session.commit()
    assert scrape(client)[("mailramp_decisions_total", (("applied", "true"), ("outcome", "hold")))] == 1


def test_a_metrics_token_is_required_when_set(app: Flask, client: FlaskClient) -> None:
    app.config["METRICS_TOKEN"] = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_counters_of_several_processes_add_up(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes count into PROMETHEUS_MULTIPROC_DIR; one scrape reports their sum."""
    code = textwrap.dedent(
        """
        from types import SimpleNamespace
        from campaigns.ops import signals
        signals.record_batch(SimpleNamespace(sent=7, failed=1, retry_later=2, skipped=0))
        signals.record_job_failure(SimpleNamespace(func_name="campaigns.jobs.send_batch_job"))
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    assert samples[("mailramp_emails_sent_total", ())] == 14
    assert samples[("mailramp_emails_failed_total", ())] == 2
    assert samples[("mailramp_emails_deferred_total", ())] == 4
    assert samples[("mailramp_job_failures_total", (("job", "send_batch_job"),))] == 2
