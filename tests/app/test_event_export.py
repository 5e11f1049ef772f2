"""Raw events out for warehouses: NDJSON and Parquet, by time range, resumable by id, API and CLI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow.parquet as pq
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.events import export as event_export
from models import Event

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def add_events(session: Session, n: int) -> None:
    session.execute(
        sa.insert(Event),
        [
            {
                "dedupe_key": f"k{i}",
                "kind": "open" if i % 3 else "click",
                "campaign_id": None,
                "contact_id": i,
                "arm": "treatment" if i % 2 else "control",
                "occurred_at": T0 + timedelta(minutes=i),
                "value": float(i),
                "ip": "198.51.100.7",
                "user_agent": "Mail/1.0",
            }
            for i in range(n)
        ],
    )
    session.commit()


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines()]


def test_ndjson_by_time_range_resumes_from_the_cursor(
    session: Session, make_api_client: Any, monkeypatch: Any
) -> None:
    add_events(session, 30)
    monkeypatch.setattr(event_export, "PAGE_ROWS", 4)  # several pages: streamed, not one query
    viewer = make_api_client("viewer")
    window = urlencode(
        {"since": (T0 + timedelta(minutes=5)).isoformat(), "until": (T0 + timedelta(minutes=25)).isoformat()}
    )
    full = viewer.get(f"/api/v1/events/export?{window}")
    assert full.status_code == 200 and full.mimetype == "application/x-ndjson"
    rows = lines(full.data)
    assert [r["contact_id"] for r in rows] == list(range(5, 25))
    assert "ip" not in rows[0] and "user_agent" not in rows[0]
    assert rows[0]["occurred_at"].startswith("2026-05-01T00:05:00")

    first = lines(viewer.get(f"/api/v1/events/export?{window}&limit=7").data)
    rest = lines(viewer.get(f"/api/v1/events/export?{window}&after={first[-1]['id']}").data)
    assert first + rest == rows  # resumed exactly where it stopped: nothing twice, nothing missing
    clicks = lines(viewer.get("/api/v1/events/export?kind=click").data)
    assert {r["kind"] for r in clicks} == {"click"} and len(clicks) == 10


def test_parquet_export_reads_back(session: Session, make_api_client: Any) -> None:
    add_events(session, 12)
    response = make_api_client("viewer").get("/api/v1/events/export?format=parquet&after=2")
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.data))
    assert table.num_rows == 10
    assert table.column("contact_id").to_pylist() == list(range(2, 12))
    assert str(table.schema.field("occurred_at").type) == "timestamp[us, tz=UTC]"


def test_bad_parameters_say_which(make_api_client: Any) -> None:
    viewer = make_api_client("viewer")
    for query, where in (
        ("format=xml", "format"),
        ("since=yesterday", "since"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("since=2026-05-02&until=2026-05-01", "until"),
    ):
        response = viewer.get(f"/api/v1/events/export?{query}")
        assert response.status_code == 400 and response.get_json()["where"] == where, query


def test_the_cli_writes_a_file_and_prints_the_cursor(app: Flask, session: Session, tmp_path: Path) -> None:
    add_events(session, 9)
    out = tmp_path / "events.parquet"
    result = app.test_cli_runner().invoke(
        args=["export", "events", str(out), "--format", "parquet", "--limit", "5"]
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 5
    cursor = result.output.strip().rsplit(" ", 1)[-1]
    out2 = tmp_path / "more.ndjson"
    result = app.test_cli_runner().invoke(args=["export", "events", str(out2), "--after", cursor])
    assert result.exit_code == 0 and len(lines(out2.read_bytes())) == 4
    bad = app.test_cli_runner().invoke(args=["export", "events", str(out2), "--since", "soon"])
    assert bad.exit_code != 0 and "since" in bad.output
