"""CSV cells cannot run as formulas; timed and recurring campaigns start once, on time."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from campaigns.reports.results import csv_lines, safe_cell
from campaigns.schedule import due_campaigns, next_occurrence
from campaigns.sending.delivery import SmtpConfig
from models import Campaign
from tests.factories import add_campaign, add_template


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (-2, -2),
        (None, None),
    ],
)
def test_formula_cells_are_escaped(value: object, expected: object) -> None:
    assert safe_cell(value) == expected


def test_csv_lines_stream_and_escape() -> None:
    rows = [["=cmd|' /C calc'!A0", 1], ["ok", 2]] * 5000
    chunks = list(csv_lines(["name", "n"], rows))
    assert len(chunks) > 1  # streamed in pieces, not built whole
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert parsed[0] == ["name", "n"] and parsed[1][0].startswith("'=")


def test_smtp_urls() -> None:
    plain = SmtpConfig.from_url("smtp://127.0.0.1:2525")
    assert (plain.host, plain.port, plain.starttls, plain.implicit_tls) == ("127.0.0.1", 2525, False, False)
    tls = SmtpConfig.from_url("smtps://user%40x:p%3Ass@mail.example:465")
    assert (tls.implicit_tls, tls.username, tls.password) == (True, "user@x", "p:ss")
    assert SmtpConfig.from_url("smtp://mx.example?starttls=1").starttls
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        SmtpConfig.from_url("http://mx.example")


def test_next_occurrence_is_wall_clock_in_the_campaign_timezone() -> None:
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before Europe's DST change
    first = next_occurrence("0 9 * * *", "Europe/London", after)
    second = next_occurrence("0 9 * * *", "Europe/London", first)
    assert first == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert second == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_timed_and_recurring_campaigns_start_once(app: object, session: Session) -> None:
    template = add_template(session)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    timed = add_campaign(
        session, template.id, schedule={"kind": "at", "send_at": (now - timedelta(minutes=1)).isoformat()}
    )
    later = add_campaign(
        session, template.id, schedule={"kind": "at", "send_at": (now + timedelta(hours=1)).isoformat()}
    )
    recurring = add_campaign(
        session, template.id, schedule={"kind": "recurring", "cron": "0 * * * *"}, wave_size=50
    )
    recurring.created_at = now - timedelta(minutes=150)  # 10:30: the 11:00 and 12:00 runs are due
    session.commit()

    due = due_campaigns(session, now)
    started = dict(due)
    assert timed.id in started and later.id not in started
    children = [c for c in session.query(Campaign).filter(Campaign.parent_id == recurring.id)]
    assert len(children) == 1 and started[children[0].id] == 50
    assert children[0].series == f"campaign-{recurring.id}"
    assert children[0].name.endswith("2026-11-23 12:00")  # only the latest missed occurrence runs
    assert due_campaigns(session, now) == []  # a second scheduler run starts nothing again
    next_hour = dict(due_campaigns(session, now + timedelta(hours=1)))
    assert later.id in next_hour  # its time has come
    assert (
        session.query(Campaign).filter(Campaign.parent_id == recurring.id).count() == 2
    )  # and the 13:00 run
