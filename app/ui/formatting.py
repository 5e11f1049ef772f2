"""Template filters: numbers, rates, basis points, times and state badges, formatted one way everywhere."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.ui.blueprint import ui

MISSING = "\u2013"  # an en dash: no value yet

_BADGES = {
    "ok": {
        "stable",
        "sent",
        "done",
        "completed",
        "approved",
        "ready",
        "active",
        "pass",
        "ok",
        "advance",
        "champion",
        "granted",
    },
    "info": {"ramping", "sending", "running", "scheduled", "planning", "shadow", "queued", "treatment"},
    "warn": {"watch", "stale", "paused", "pending", "hold", "warn", "challenger", "training", "draft"},
    "bad": {
        "failed",
        "rolled_back",
        "rollback",
        "killed",
        "fail",
        "rejected",
        "cancelled",
        "unsubscribed",
        "bounced",
        "complained",
        "breach",
        "drifted",
        "withdrawn",
    },
}


@ui.app_template_filter("badge_class")
def badge_class(state: object) -> str:
    text = str(state or "").lower()
    for cls, states in _BADGES.items():
        if text in states:
            return cls
    return "neutral"


CURRENCY_SYMBOLS = {"GBP": "\u00a3", "EUR": "\u20ac", "USD": "$", "JPY": "\u00a5", "INR": "\u20b9"}


@ui.app_template_filter("money")
def money(value: float | int | None, currency: str | None = None) -> str:
    """An amount in the workspace's currency (MAILRAMP_CURRENCY): \u00a31,234.50, CHF 12.00."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    from flask import current_app

    code = (currency or current_app.config.get("CURRENCY") or "GBP").upper()
    digits = 0 if code == "JPY" else 2
    sign = "-" if value < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(code)
    amount = f"{abs(value):,.{digits}f}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{code}\u00a0{amount}"


@ui.app_template_filter("num")
def num(value: float | int | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,.{digits}f}"


@ui.app_template_filter("pct")
def pct(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage: 0.0213 -> '2.1%'."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return MISSING
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value * 100:.{digits}f}%".replace("-", "\u2212")


@ui.app_template_filter("bp")
def bp(value: int | None) -> str:
    """Basis points as a percentage: 250 -> '2.5%'."""
    if value is None:
        return MISSING
    return f"{value / 100:g}%"


@ui.app_template_filter("dt")
def dt(value: datetime | str | None, with_seconds: bool = False) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        when = value
    fmt = "%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M"
    if when.tzinfo is None:
        return when.strftime(fmt)
    return when.astimezone(UTC).strftime(fmt) + " UTC"


@ui.app_template_filter("options")
def options(rows: Iterable[Any], label: str = "name") -> list[tuple[str, str]]:
    """(id, label) pairs for a <select> from model rows."""
    return [(str(row.id), str(getattr(row, label))) for row in rows]


@ui.app_template_filter("ms_dt")
def ms_dt(value: float | int | None) -> str:
    """Epoch milliseconds (chart data) as a UTC time."""
    if value is None:
        return MISSING
    return dt(datetime.fromtimestamp(value / 1000, UTC), with_seconds=True)


@ui.app_template_filter("date")
def date(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value is not None else MISSING


@ui.app_template_filter("localtime")
def localtime(value: datetime | None, zone: str = "UTC") -> str:
    """The time of day (HH:MM) of a moment in a time zone."""
    if value is None:
        return MISSING
    from zoneinfo import ZoneInfo

    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


@ui.app_template_filter("subject")
def subject(source: str | None) -> str:
    """A subject line as the sample contact reads it, not its Jinja source."""
    from campaigns.content.templates import sample_subject

    return sample_subject(source or "")
