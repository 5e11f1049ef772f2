"""Shared by the flow tests: a flow through the API, a clock the test moves, a tick that drains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns.flows.scheduler import TickOutcome, run_due
from campaigns.ops.queues import all_queues
from campaigns.runtime import Runtime
from models import simulated_now, utcnow
from tests.conftest import ApiClient
from tests.factories import add_template


@dataclass
class Clock:
    """The scheduler's injectable clock: time moves only when the test says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def start_clock() -> Clock:
    return Clock(utcnow().replace(microsecond=0) + timedelta(seconds=1))


def tick(rt: Runtime, clock: Clock) -> TickOutcome:
    """One scheduler run at the clock's time, then the send jobs it queued, run to the end."""
    with simulated_now(clock.now):
        outcome = run_due(rt, clock=clock)
        SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    return outcome


def send_step(session: Session, step_id: str, subject: str) -> dict[str, Any]:
    """A send step with a template of its own, whose subject is `subject`."""
    template_id = add_template(session, name=f"{step_id} {subject}", subject=subject).id
    return {"id": step_id, "type": "send", "template_id": template_id, "from_email": "shop@example.com"}


def make_flow(api: ApiClient, name: str, definition: dict[str, Any], activate: bool = True) -> dict[str, Any]:
    made = api.post("/api/v1/flows", json={"name": name, "definition": definition})
    assert made.status_code == 201, made.json
    if activate:
        active = api.post(f"/api/v1/flows/{made.json['id']}/activate")
        assert active.status_code == 200 and active.json["state"] == "active", active.json
        return dict(active.json)
    return dict(made.json)
