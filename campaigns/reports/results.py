"""Results per campaign and arm, and streamed CSV exports whose cells cannot run as formulas."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.privacy.folding import folded_results, send_outcomes
from models import Contact, Event, Send, Wave

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ArmResult:
    arm: str
    planned: int
    sent: int
    failed: int
    skipped: int
    pending: int
    delivered: int
    bounces: int
    opens: int  # unique human opens
    machine_opens: int  # recipients whose only opens were machine opens are not in `opens`
    clicks: int  # unique human clicks
    bot_clicks: int
    conversions: int
    revenue: float
    unsubscribes: int
    complaints: int

    def rates(self) -> dict[str, float | None]:
        d = self.delivered
        return {
            "delivery_rate": self.delivered / self.sent if self.sent else None,
            "open_rate": self.opens / d if d else None,
            "click_rate": self.clicks / d if d else None,
            "conversion_rate": self.conversions / d if d else None,
            "revenue_per_recipient": self.revenue / d if d else None,
            "unsubscribe_rate": self.unsubscribes / d if d else None,
            "complaint_rate": self.complaints / d if d else None,
            "bounce_rate": self.bounces / self.sent if self.sent else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), **self.rates()}


def campaign_results(session: Session, campaign_id: int) -> list[ArmResult]:
    rows = session.execute(
        sa.select(Send.arm, *send_outcomes())
        .where(Send.campaign_id == campaign_id)
        .group_by(Send.arm)
        .order_by(Send.arm)
    ).all()
    machine = {
        (arm, kind): n
        for arm, kind, n in session.execute(
            sa.select(Event.arm, Event.kind, sa.func.count(sa.distinct(Event.send_id)))
            .where(Event.campaign_id == campaign_id, Event.machine.is_(True))
            .group_by(Event.arm, Event.kind)
        )
    }
    results = []
    for row in rows:
        counts = dict(row._mapping)
        arm = counts["arm"]
        counts["revenue"] = float(counts["revenue"])
        counts["delivered"] = max(counts["sent"] - counts["bounces"], 0)
        counts["machine_opens"] = int(machine.get((arm, "open"), 0))
        counts["bot_clicks"] = int(machine.get((arm, "click"), 0))
        results.append(ArmResult(**counts))
    return _with_folded(session, campaign_id, results)


def _with_folded(session: Session, campaign_id: int, results: list[ArmResult]) -> list[ArmResult]:
    """Add the outcomes of sends no longer stored (retention, erasure): results read the same."""
    folded = folded_results(session, campaign_id)
    if not folded:
        return results
    by_arm = {r.arm: asdict(r) for r in results}
    for arm, counts in folded.items():
        row = by_arm.setdefault(arm, {"arm": arm, **dict.fromkeys(counts, 0), "delivered": 0})
        for key, value in counts.items():
            row[key] += value
    merged = []
    for arm in sorted(by_arm):
        row = by_arm[arm]
        row["delivered"] = max(row["sent"] - row["bounces"], 0)
        row["revenue"] = float(row["revenue"])
        merged.append(ArmResult(**row))
    return merged


def safe_cell(value: Any) -> Any:
    """A text cell starting with = + - @ (or tab/CR) is prefixed with ' so spreadsheets show it as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if isinstance(value, float) and not math.isfinite(value):
        return ""  # a NaN or infinite value stored before values were checked: no number, not "nan"
    return value


def csv_lines(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


RESULT_COLUMNS = [
    "arm",
    "planned",
    "sent",
    "failed",
    "skipped",
    "pending",
    "delivered",
    "bounces",
    "opens",
    "machine_opens",
    "clicks",
    "bot_clicks",
    "conversions",
    "revenue",
    "unsubscribes",
    "complaints",
    "open_rate",
    "click_rate",
    "conversion_rate",
    "revenue_per_recipient",
    "unsubscribe_rate",
]


def results_csv(session: Session, campaign_id: int) -> Iterator[str]:
    results = [r.as_dict() for r in campaign_results(session, campaign_id)]
    return csv_lines(RESULT_COLUMNS, ([r[c] for c in RESULT_COLUMNS] for r in results))


SEND_COLUMNS = [
    "send_id",
    "email",
    "name",
    "arm",
    "content",
    "state",
    "sent_at",
    "opened_at",
    "clicked_at",
    "converted_at",
    "revenue",
    "unsubscribed_at",
    "error",
]


def sends_csv(session_factory: Any, campaign_id: int, chunk: int = 5000) -> Iterator[str | bytes]:
    """Every ledger row of a campaign, streamed on its own session (usable after the request).

    PostgreSQL: `COPY (...) TO STDOUT` streamed as the server writes it, with the formula escaping
    and the value formats of the portable path done in SQL. Elsewhere: rows in chunks, Python's csv.
    """
    session: Session = session_factory()
    try:
        if session.get_bind().dialect.name == "postgresql":
            yield from _sends_copy(session, campaign_id)
        else:
            yield from sends_csv_portable(session, campaign_id, chunk)
    finally:
        session.close()


def sends_csv_portable(session: Session, campaign_id: int, chunk: int = 5000) -> Iterator[str]:
    """The export on any database: rows read in chunks, written by Python's csv module."""
    query = (
        sa.select(
            Send.id,
            Contact.email,
            Contact.name,
            Send.arm,
            Send.content,
            Send.state,
            Send.sent_at,
            Send.opened_at,
            Send.clicked_at,
            Send.converted_at,
            Send.revenue,
            Send.unsubscribed_at,
            Send.error,
        )
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.campaign_id == campaign_id)
        .order_by(Send.id)
        .execution_options(yield_per=chunk)
    )
    rows = ((v.isoformat() if hasattr(v, "isoformat") else v for v in row) for row in session.execute(query))
    yield from csv_lines(SEND_COLUMNS, rows)


def _text_cell(column: str) -> str:
    """SQL for `safe_cell`: a leading = + - @ tab or CR gets a ' prefix; '' is written as nothing."""
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || {column} "
        f"ELSE NULLIF({column}, '') END"
    )


def _time_cell(column: str) -> str:
    """SQL for `datetime.isoformat()` of an aware UTC time (microseconds only when there are some)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN extract(microseconds FROM {utc})::bigint """
        f"% 1000000 <> 0 THEN to_char({utc}, '.US') ELSE '' END || '+00:00'"
    )


def _sends_copy(session: Session, campaign_id: int) -> Iterator[bytes]:
    cells = [
        "s.id",
        _text_cell("c.email"),
        _text_cell("c.name"),
        _text_cell("s.arm"),
        _text_cell("s.content"),
        _text_cell("s.state"),
        *(_time_cell(f"s.{c}") for c in ("sent_at", "opened_at", "clicked_at", "converted_at")),
        "s.revenue::text || CASE WHEN s.revenue = trunc(s.revenue) AND abs(s.revenue) < 1e15 "
        "THEN '.0' ELSE '' END",
        _time_cell("s.unsubscribed_at"),
        _text_cell("s.error"),
    ]
    select = ", ".join(f'{cell} AS "{name}"' for cell, name in zip(cells, SEND_COLUMNS, strict=True))
    statement = (
        f"COPY (SELECT {select} FROM sends s JOIN contacts c ON c.id = s.contact_id "
        f"WHERE s.campaign_id = {int(campaign_id)} ORDER BY s.id) TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for block in copy:
            yield bytes(block)


def campaign_progress(session: Session, campaign_id: int) -> dict[str, Any]:
    """Ledger states and waves: what the progress bar shows while a campaign sends."""
    states = dict(
        session.execute(
            sa.select(Send.state, sa.func.count()).where(Send.campaign_id == campaign_id).group_by(Send.state)
        ).all()
    )
    waves = session.scalars(sa.select(Wave).where(Wave.campaign_id == campaign_id).order_by(Wave.number))
    # Queued rows split by why they wait: held by the throttle, deferred by the server (4xx), or next.
    why = sa.case(
        (Send.error.like("throttled%"), "throttled"),
        (Send.error.like("4%"), "deferred"),
        (Send.error.like("quiet hours%"), "quiet_hours"),  # until the contact's quiet hours end
        else_="queued",
    )
    waiting: dict[str, int] = dict(
        session.execute(
            sa.select(why, sa.func.count())
            .where(Send.campaign_id == campaign_id, Send.state == "queued")
            .group_by(why)
        ).all()
    )
    failed_errors = session.execute(
        sa.select(Send.error, sa.func.count().label("n"))
        .where(Send.campaign_id == campaign_id, Send.state == "failed")
        .group_by(Send.error)
        .order_by(sa.desc("n"), Send.error)
        .limit(500)
    ).all()
    skipped_errors = session.execute(
        sa.select(Send.error, sa.func.count().label("n"))
        .where(Send.campaign_id == campaign_id, Send.state == "skipped")
        .group_by(Send.error)
        .order_by(sa.desc("n"), Send.error)
        .limit(500)
    ).all()
    total = sum(states.values())
    done = sum(states.get(s, 0) for s in ("sent", "failed", "skipped"))
    return {
        "states": states,
        "total": total,
        "done": done,
        "fraction": done / total if total else None,
        "delivery": {
            "sent": states.get("sent", 0),
            "queued": waiting.get("queued", 0),
            "throttled": waiting.get("throttled", 0),
            "deferred": waiting.get("deferred", 0),
            "quiet_hours": waiting.get("quiet_hours", 0),
            "failed": states.get("failed", 0),
        },
        "failures": failure_reasons(failed_errors),
        # skipped rows by reason: "frequency cap: 2 in 24 h", "unsubscribed, ...", "campaign cancelled"
        "skips": failure_reasons(skipped_errors),
        "waves": [
            {
                "id": w.id,
                "number": w.number,
                "status": w.status,
                "planned": w.planned,
                "batches": w.batches,
                "limit": w.limit,
                "scored_at": w.scored_at.isoformat() if w.scored_at else None,
                "scoring_error": w.scoring_error,  # an AI wave waits while this is set
            }
            for w in waves
        ],
    }


def failure_reasons(errors: Sequence[Any], top: int = 5) -> list[dict[str, Any]]:
    """Failed rows by kind of reason, the most frequent first, each with one full example: what the
    marketer needs to act on. `not sent: address refused: <why>` is of kind `not sent: address
    refused`; a server's refusal is of the kind of its code (`550`)."""
    kinds: dict[str, dict[str, Any]] = {}
    for error, count in errors:
        text = error or "unknown"
        if text.startswith("not sent: "):
            kind = ":".join(text.split(":", 2)[:2])
        elif text[:3].isdigit():
            kind = f"{text[:3]} refused by the receiving server"
        else:
            kind = text.split(":", 1)[0][:80]
        entry = kinds.setdefault(kind, {"reason": kind, "count": 0, "example": text[:300]})
        entry["count"] += int(count)
    return sorted(kinds.values(), key=lambda k: -k["count"])[:top]
