"""The sends.csv export: the same cells on every database (PostgreSQL streams COPY TO STDOUT with the
escaping done in SQL), formula cells escaped, through the API as a streamed download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.jobs import start_wave
from campaigns.reports.results import SEND_COLUMNS, sends_csv, sends_csv_portable
from models import Contact, Send
from tests.factories import add_campaign, add_contacts, add_template


def parse(chunks: Any) -> list[list[str]]:
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    return list(csv.reader(io.StringIO(text)))


def test_export_cells_match_the_portable_path_and_escape_formulas(app: Flask, session: Session) -> None:
    rt = app.extensions["mailramp"]
    ids = add_contacts(session, 6)
    names = ["=HYPERLINK(1)", "+1", "-2", "@cmd", "\tTab", "Plain, with comma"]
    for contact_id, name in zip(ids, names, strict=True):
        session.execute(sa.update(Contact).where(Contact.id == contact_id).values(name=name))
    campaign = add_campaign(session, add_template(session).id)
    session.commit()
    start_wave(rt, campaign.id, None)
    first = session.scalar(sa.select(Send.id).where(Send.campaign_id == campaign.id).order_by(Send.id))
    session.execute(
        sa.update(Send)
        .where(Send.id == first)
        .values(
            state="sent",
            sent_at=datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC),
            opened_at=datetime(2026, 5, 1, 10, 5, 7, 250_000, tzinfo=UTC),
            revenue=12.5,
            error="-ERR odd",
        )
    )
    session.commit()

    rows = parse(sends_csv(rt.session_factory, campaign.id))
    portable = parse(sends_csv_portable(session, campaign.id))
    assert rows == portable  # the COPY path (on PostgreSQL) writes exactly the same cells
    assert rows[0] == SEND_COLUMNS and len(rows) == 7
    by_email = {r[1]: dict(zip(SEND_COLUMNS, r, strict=True)) for r in rows[1:]}
    shown = {by_email[f"person{i}@example.com"]["name"] for i in range(6)}
    assert shown == {"'=HYPERLINK(1)", "'+1", "'-2", "'@cmd", "'\tTab", "Plain, with comma"}
    sent = next(r for r in by_email.values() if r["state"] == "sent")
    assert sent["sent_at"] == "2026-05-01T10:00:00+00:00"
    assert sent["opened_at"] == "2026-05-01T10:05:07.250000+00:00"
    assert (sent["revenue"], sent["error"], sent["clicked_at"]) == ("12.5", "'-ERR odd", "")
    queued = next(r for r in by_email.values() if r["state"] == "queued")
    assert (queued["revenue"], queued["sent_at"]) == ("0.0", "")


def test_export_streams_through_the_api(app: Flask, session: Session, make_api_client: Any) -> None:
    add_contacts(session, 3)
    campaign = add_campaign(session, add_template(session).id)
    start_wave(app.extensions["mailramp"], campaign.id, None)
    response = make_api_client("viewer").get(f"/api/v1/campaigns/{campaign.id}/sends.csv")
    assert response.status_code == 200 and response.is_streamed
    assert len(parse([response.data])) == 4
