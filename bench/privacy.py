"""Privacy costs on SQLite (a temporary file): retention, erasure, and the audit listener.

- retention: N sends (sent 800 days ago) with two events each (a human open, a machine open), folded
  into the campaign results and deleted by `apply_retention` (rows/s); results checked equal;
- erasure: `erase_contact` for 20 contacts of a database holding N sends (median ms; the database
  part, Redis not included);
- the audit listener: 2,000 contact updates through the ORM, flushed by 100, with and without the
  listener (its overhead per change).

Usage: python bench/privacy.py [--sends 100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import emit
from campaigns.privacy import audit
from campaigns.privacy.erasure import erase_contact
from campaigns.privacy.retention import apply_retention
from campaigns.reports.results import campaign_results
from models import Base, Campaign, Contact, Event, Send, Template, utcnow
from models.db import make_engine, make_session_factory


def populate(session: Session, n: int) -> int:
    template = Template(name="bench", layout_html="{{ content }}")
    session.add(template)
    session.flush()
    campaign = Campaign(name="bench", template_id=template.id, from_email="shop@example.com")
    session.add(campaign)
    session.commit()
    old = utcnow() - timedelta(days=800)
    for start in range(0, n, 20_000):
        size = min(20_000, n - start)
        session.execute(
            sa.insert(Contact),
            [
                {"email": f"p{start + i}@example.com", "name": f"P {start + i}", "attributes": {}}
                for i in range(size)
            ],
        )
        ids = list(session.scalars(sa.select(Contact.id).order_by(Contact.id.desc()).limit(size)))
        session.execute(
            sa.insert(Send),
            [
                {
                    "campaign_id": campaign.id,
                    "contact_id": c,
                    "arm": "control",
                    "state": "sent",
                    "queued_at": old,
                    "sent_at": old,
                    "opened_at": old if c % 3 == 0 else None,
                }
                for c in ids
            ],
        )
        sends = session.execute(sa.select(Send.id, Send.contact_id).where(Send.contact_id.in_(ids))).all()
        session.execute(
            sa.insert(Event),
            [
                {
                    "dedupe_key": f"{kind}-{s}",
                    "kind": "open",
                    "send_id": s,
                    "campaign_id": campaign.id,
                    "contact_id": c,
                    "arm": "control",
                    "machine": kind == "m",
                    "occurred_at": old,
                    "stored_at": old,
                }
                for s, c in sends
                for kind in ("h", "m")
            ],
        )
        session.commit()
    return campaign.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=100_000)
    n = parser.parse_args().sends
    audit.install("bench")
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        with factory() as session:
            started = time.perf_counter()
            campaign_id = populate(session, n)
            print(
                f"populated {n:,} contacts, sends and {2 * n:,} events in {time.perf_counter() - started:.1f} s"
            )

            erasures = []
            for contact_id in range(1, 21):
                started = time.perf_counter()
                erase_contact(session, None, contact_id, "bench")
                session.commit()
                erasures.append((time.perf_counter() - started) * 1000)
            erase_ms = statistics.median(erasures)
            print(f"erasure of one contact among {n:,}: median {erase_ms:.1f} ms (database part)")

            before = campaign_results(session, campaign_id)
            started = time.perf_counter()
            report = apply_retention(session, events_days=365, sends_days=730)
            seconds = time.perf_counter() - started
            rows = report.sends_deleted + report.events_deleted
            assert campaign_results(session, campaign_id) == before, "retention changed the results"
            print(f"retention: {report.sends_deleted:,} sends and {report.events_deleted:,} events folded and deleted "
                  f"in {seconds:.1f} s ({rows / seconds:,.0f} rows/s); results unchanged")  # fmt: skip

            contacts = list(session.scalars(sa.select(Contact).order_by(Contact.id).limit(2000)))
            timings: dict[str, list[float]] = {"with": [], "without": []}
            for label in ("without", "with", "without", "with"):  # alternated: no warm-up favours either
                if label == "without":
                    sa.event.remove(Session, "after_flush", audit._after_flush)
                else:
                    audit.install("bench")
                started = time.perf_counter()
                for i, contact in enumerate(contacts):
                    contact.country = f"{label}-{len(timings[label])}-{i}"
                    if i % 100 == 99:
                        session.flush()
                session.commit()
                timings[label].append(time.perf_counter() - started)
            best = {label: min(values) for label, values in timings.items()}
            overhead_us = (best["with"] - best["without"]) / len(contacts) * 1e6
            print(f"audit listener: 2,000 ORM updates {best['with'] * 1000:.0f} ms with, "
                  f"{best['without'] * 1000:.0f} ms without ({overhead_us:.0f} µs per change)")  # fmt: skip
        engine.dispose()
    emit({"bench": "privacy", "sends": n, "erase_ms": round(erase_ms, 1),
          "retention_rows_per_s": round(rows / seconds), "audit_us_per_change": round(overhead_us)})  # fmt: skip


if __name__ == "__main__":
    main()
