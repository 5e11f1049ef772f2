"""bench/flows.py's flow, contacts, and its peer measured in the same run: the entry-by-entry path
of phase 1 (`enter` per contact, `advance` per entry in its own savepoint) against the set-based one
(`enter_many`, `advance_claimed`) on the same number of fresh entries, rolled back."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
START = datetime(2026, 3, 2, tzinfo=UTC)


def make_flow(
    session: Any, name: str, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None
) -> int:
    from campaigns.flows.definition import FlowDefinition
    from campaigns.flows.records import change_state, create_flow

    definition = FlowDefinition.model_validate(
        {"trigger": trigger or {"kind": "contact_created"}, "steps": steps, "re_entry": {"rule": "never"}}
    )
    flow = create_flow(session, name, definition, "bench")
    session.flush()
    change_state(session, flow.id, "activate")
    session.commit()
    return flow.id


def add_contacts(session: Any, start: int, count: int, prefix: str = "c") -> list[int]:
    from models import Contact

    rows = [
        {"email": f"{prefix}{i}@example.com", "name": f"Person {i}", "timezone": ZONES[i % len(ZONES)]}
        for i in range(start, start + count)
    ]
    return [int(i) for i in session.execute(sa.insert(Contact).returning(Contact.id), rows).scalars()]


def peer(rt: Any, templates: list[int], n: int) -> dict[str, float]:
    """Entry by entry (phase 1) against set-based, on n fresh contacts each, rolled back."""
    from campaigns.flows import scheduler
    from campaigns.flows.entering import enter_many
    from campaigns.flows.sends import WaveBook
    from campaigns.flows.triggers import enter
    from models import Flow

    out: dict[str, float] = {}
    for way in ("one_by_one", "set_based"):
        session = rt.session_factory()
        try:
            steps = [
                {
                    "id": "hello",
                    "type": "send",
                    "template_id": templates[0],
                    "from_email": "shop@example.com",
                },
                {"id": "pause", "type": "wait", "hours": 1},
            ]
            trigger = {"kind": "event", "name": f"peer-{way}"}  # not the day's trigger
            flow = session.get(Flow, make_flow(session, f"peer {way}", steps, trigger))
            ids = add_contacts(session, 0, n, prefix=f"peer-{way}-")
            now = START
            t0 = time.perf_counter()
            if way == "one_by_one":
                for contact_id in ids:
                    enter(session, flow, contact_id, f"peer:{contact_id}", {}, now)
            else:
                enter_many(session, flow, [(c, f"peer:{c}", {}) for c in ids], now)
            session.flush()
            out[f"enter_{way}_per_s"] = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            advanced = 0
            while advanced < n:
                entries = scheduler.claim(session, now, scheduler.BATCH)
                if not entries:
                    break
                outcome = scheduler.TickOutcome()
                if way == "one_by_one":
                    book = WaveBook(rt.settings.batch_size)
                    for entry in entries:
                        scheduler._advance_alone(session, entry, now, book, outcome)
                else:
                    scheduler.advance_claimed(session, entries, now, rt.settings.batch_size, outcome)
                session.flush()
                advanced += len(entries)
            out[f"advance_{way}_per_s"] = advanced / (time.perf_counter() - t0)
        finally:
            session.rollback()
            session.close()
    return out
