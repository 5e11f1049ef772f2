"""A send step whose job was lost (the worker killed after the commit, Redis gone before the enqueue)
is sent by the wave recovery every campaign wave has, once."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns import jobs
from campaigns.flows.scheduler import run_due
from campaigns.flows.triggers import record_event
from campaigns.ops.queues import all_queues
from models import FlowEntry, Send, Wave, simulated_now
from tests.campaigns.flows.helpers import make_flow, send_step, start_clock
from tests.conftest import ApiClient, SmtpSink
from tests.factories import add_contacts


def test_a_lost_send_job_is_recovered_and_sent_once(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = app.extensions["mailramp"]
    make_flow(
        api,
        "Once",
        {"trigger": {"kind": "event", "name": "browsed"}, "steps": [send_step(session, "s", "S")]},
    )
    contacts = add_contacts(session, 5)
    clock = start_clock()
    with simulated_now(clock.now):
        for contact in contacts:
            record_event(session, contact, "browsed", key=f"k{contact}")
    session.commit()
    lost: list[Any] = []
    monkeypatch.setattr(jobs, "enqueue_batches", lambda rt, batches, score_first=False: lost.extend(batches))
    assert run_due(rt, clock=clock).sent == 5
    monkeypatch.undo()
    assert len(lost) == 1 and session.scalar(sa.select(Wave.status)) == "sending"
    assert run_due(rt, clock=clock).advanced == 0  # the entries moved on: the scheduler never re-sends
    for _ in range(2):  # the periodic recovery, twice: the second finds nothing to do
        jobs.resume_open_waves(rt)
        SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_sink.messages) == sorted(
        f"person{i}@example.com" for i in range(5)
    )
    assert set(session.scalars(sa.select(Send.state))) == {"sent"}
    assert set(session.scalars(sa.select(FlowEntry.state))) == {"completed"}
    assert session.scalar(sa.select(Wave.status)) == "done"
