"""The calendar of sends: a month at a time, timed and recurring campaigns and waves already sent, in
the viewer's time zone (?tz=, else UTC; the page offers the browser's)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import render_template, request

from app.auth import require_role
from app.extensions import db
from app.ui.blueprint import ui
from campaigns.reports.calendar import month_entries, month_to_open, weeks
from models import Role


def _month(zone: ZoneInfo) -> tuple[int, int]:
    raw = request.args.get("month", "")
    try:
        year, month = (int(part) for part in raw.split("-"))
        if 2000 <= year <= 2200 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    return month_to_open(db(), zone)


def _zone() -> ZoneInfo:
    try:
        return ZoneInfo(request.args.get("tz", "") or "UTC")
    except Exception:
        return ZoneInfo("UTC")


@ui.route("/calendar")
@require_role(Role.viewer)
def calendar() -> str:
    zone = _zone()
    year, month = _month(zone)
    entries = month_entries(db(), year, month, zone)
    by_day: dict[date, list[object]] = {}
    for entry in entries:
        by_day.setdefault(entry.day, []).append(entry)
    previous = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    following = f"{year + (month == 12)}-{month % 12 + 1:02d}"
    return render_template(
        "ui/calendar.html",
        title=date(year, month, 1).strftime("%B %Y"),
        weeks=weeks(year, month),
        by_day=by_day,
        entries=entries,
        zone=zone.key,
        previous=previous,
        following=following,
        today=datetime.now(zone).date(),
    )
