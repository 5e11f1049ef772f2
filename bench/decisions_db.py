"""Evaluation cost with 10 million events in the database (part of bench/decisions.py).

Builds a SQLite database (a temporary file) holding one ramping rollout with N/4 contacts and sends
over three stages and N events (delivered, human and machine opens, human and bot clicks,
conversions with values, unsubscribes, complaints, bounces), generated inside SQLite with recursive
CTEs. The aggregates are built from those rows by `campaigns.events.metrics_rebuild.rebuild_aggregates`
(equal to the incremental path: tests/campaigns/events/test_metrics.py checks it); sends are spread over a
week of hourly send-time cohorts (168), so the aggregates have the rows maturation needs. Then it
times:

- `evaluate()` end to end (decision stored, applied through the state machine), rolled back after
  each run so every run decides the same thing; median of 5;
- the decision alone (`load_snapshot` + `decide`), which is what reads the aggregates;
- for contrast, one GROUP BY over the rollout's events (what an evaluation without aggregates does);
- the incremental ingest path: `record_events` on fresh batches of 1,000 events (events/s).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from campaigns.decisions import decide
from campaigns.decisions.evaluation import evaluate, load_snapshot
from campaigns.events import metrics
from campaigns.events.metrics_rebuild import rebuild_aggregates
from models import Base, Campaign, Event, Rollout, Template
from models.db import make_engine, make_session_factory

EXPOSURES = (100, 500, 1000, 2500, 5000, 10_000)
STAMP = "2024-11-20 09:00:00.000000"  # how UTCDateTime stores datetimes on SQLite


def _populate(engine: sa.Engine, n_events: int) -> tuple[int, dict[str, float]]:
    factory = make_session_factory(engine)
    timings: dict[str, float] = {}
    with factory() as session:
        template = Template(name="bench", layout_html="{{ content }}")
        session.add(template)
        session.flush()
        plan = [{"name": f"{bp / 100:g}%", "kind": "percent", "exposure_bp": bp,
                 "gates": {"min_recipients_per_arm": 5000}} for bp in EXPOSURES]  # fmt: skip
        rollout = Rollout(name="bench", salt="bench", state="ramping", stage_index=2, stages=plan, holdout_bp=500,
                          stage_started_at=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
        session.add(rollout)
        session.flush()
        campaign = Campaign(name="bench", template_id=template.id, rollout_id=rollout.id, from_email="a@b.c")
        session.add(campaign)
        session.commit()
        rollout_id, campaign_id = rollout.id, campaign.id
    n_sends = max(n_events // 4, 1)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?) "
            "INSERT INTO contacts (email, name, attributes, country, timezone, consent, status, created_at, updated_at) "
            "SELECT 'c' || x || '@example.com', '', '{}', '', 'UTC', 1, 'active', ?, ? FROM seq",
            (n_sends, STAMP, STAMP),
        )
        # stage = id % 3 (1%, 5%, 10%); arm by bucket: holdout on top, treatment below the exposure
        conn.exec_driver_sql(
            "WITH d AS MATERIALIZED (SELECT id, id % 3 AS st, abs(random()) % 10000 AS b FROM contacts) "
            "INSERT INTO sends (campaign_id, contact_id, batch, rollout_id, stage_index, arm, bucket, forced, content, state,"
            " message_id, attempts, error, render_ms, queued_at, sent_at, revenue) "
            "SELECT ?, id, 0, ?, st, CASE WHEN b >= 9500 THEN 'holdout' WHEN b < (CASE st WHEN 0 THEN 100 WHEN 1 THEN 500"
            " ELSE 1000 END) THEN 'treatment' ELSE 'control' END, b, 0, 'control',"
            " CASE WHEN abs(random()) % 1000 = 0 THEN 'failed' ELSE 'sent' END, '', 1, '', 2 + abs(random()) % 40, ?,"
            " strftime('%Y-%m-%d %H:00:00.000000', ?, '-' || (id % 168) || ' hours'), 0 "  # a week of hourly cohorts
            "FROM d",
            (campaign_id, rollout_id, STAMP, STAMP),
        )
        # four events per send: delivered, then three drawn from the mix below
        conn.exec_driver_sql(
            "WITH d AS MATERIALIZED (SELECT s.id AS sid, s.campaign_id AS cid, s.contact_id AS ctid, s.arm AS arm,"
            " s.stage_index AS st, k.j AS j, abs(random()) % 1000 AS r FROM sends s"
            " JOIN (SELECT 0 AS j UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) k WHERE s.rollout_id = ?) "
            "INSERT INTO events (dedupe_key, kind, send_id, campaign_id, contact_id, rollout_id, arm, stage_index, value,"
            " machine, reason, user_agent, ip, occurred_at, stored_at) "
            "SELECT 'e' || sid || ':' || j, CASE WHEN j = 0 THEN 'delivered' WHEN r < 500 THEN 'open'"
            " WHEN r < 900 THEN 'click' WHEN r < 960 THEN 'conversion' WHEN r < 980 THEN 'unsubscribe'"
            " WHEN r < 983 THEN 'complaint' ELSE 'bounce' END, sid, cid, ctid, ?, arm, st,"
            " CASE WHEN j > 0 AND r >= 900 AND r < 960 THEN 10 + r % 50 ELSE 0 END,"
            " CASE WHEN j > 0 AND r % 3 = 0 AND r < 900 THEN 1 ELSE 0 END, '', '', '', ?, ? FROM d",
            (rollout_id, rollout_id, STAMP, STAMP),
        )
    timings["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with factory() as session:
        rebuild_aggregates(session, rollout_id)
        session.commit()
    timings["rebuild_aggregates_s"] = time.perf_counter() - started
    return rollout_id, timings


def _ingest_rate(engine: sa.Engine, rollout_id: int, batches: int = 5, size: int = 1000) -> float:
    factory = make_session_factory(engine)
    rng = random.Random(5)
    with factory() as session:
        top = int(session.scalar(sa.select(sa.func.max(sa.text("id"))).select_from(sa.table("sends"))) or 1)
        spent = 0.0
        for b in range(batches):
            ids = [rng.randint(1, top) for _ in range(size)]
            kinds = rng.choices(
                ["open", "click", "conversion", "unsubscribe", "delivered"], [50, 30, 10, 2, 8], k=size
            )
            events = [
                Event(dedupe_key=f"ingest:{b}:{i}", kind=k, send_id=s, rollout_id=rollout_id, value=12.5 if k == "conversion" else 0.0,
                      machine=(k in ("open", "click") and rng.random() < 0.3), occurred_at=datetime.now(UTC))
                for i, (s, k) in enumerate(zip(ids, kinds, strict=True))
            ]  # fmt: skip
            session.add_all(events)
            session.flush()
            started = time.perf_counter()
            metrics.record_events(session, events)
            session.flush()
            spent += time.perf_counter() - started
        session.rollback()
    return batches * size / spent


def evaluation_timing(n_events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mailramp-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        Base.metadata.create_all(engine)
        print(f"\nEvaluation with {n_events:,} events: generating the database (SQLite)...", flush=True)
        rollout_id, timings = _populate(engine, n_events)
        factory = make_session_factory(engine)
        with factory() as session:
            stored = int(session.scalar(sa.select(sa.func.count()).select_from(Event)) or 0)
        full, decide_only, outcome = [], [], ""
        for _ in range(5):
            with factory() as session:
                started = time.perf_counter()
                decision = evaluate(session, rollout_id)
                session.flush()
                full.append(time.perf_counter() - started)
                outcome = f"{decision.outcome} ({'applied' if decision.applied else 'not applied'}): {'; '.join(decision.reasons)}"
                session.rollback()
            with factory() as session:
                rollout = session.get(Rollout, rollout_id)
                assert rollout is not None
                started = time.perf_counter()
                decide(load_snapshot(session, rollout, datetime.now(UTC)))
                decide_only.append(time.perf_counter() - started)
        with factory() as session:
            started = time.perf_counter()
            session.execute(
                sa.select(
                    Event.arm,
                    Event.stage_index,
                    Event.kind,
                    Event.machine,
                    sa.func.count(sa.distinct(Event.send_id)),
                )
                .where(Event.rollout_id == rollout_id)
                .group_by(Event.arm, Event.stage_index, Event.kind, Event.machine)
            ).all()
            scan = time.perf_counter() - started
        rate = _ingest_rate(engine, rollout_id)
        engine.dispose()
    out = {
        "events_stored": stored,
        "evaluate_ms_median": round(1000 * statistics.median(full), 1),
        "decide_from_aggregates_ms_median": round(1000 * statistics.median(decide_only), 1),
        "events_group_by_scan_s": round(scan, 2),
        "ingest_record_events_per_s": round(rate),
        "generate_db_s": round(timings["generate_s"], 1),
        "rebuild_aggregates_s": round(timings["rebuild_aggregates_s"], 1),
        "evaluation_outcome": outcome,
    }
    print(
        f"  {stored:,} events stored; generated in {out['generate_db_s']} s; aggregates rebuilt in {out['rebuild_aggregates_s']} s"
    )
    print(f"  evaluate() end to end: {out['evaluate_ms_median']} ms median of 5 (decision: {outcome})")
    print(f"  decision from aggregates alone: {out['decide_from_aggregates_ms_median']} ms")
    print(f"  for contrast, one GROUP BY over the rollout's events: {out['events_group_by_scan_s']} s")
    print(
        f"  incremental ingest (record_events, batches of 1,000): {out['ingest_record_events_per_s']:,} events/s"
    )
    return out
