"""The calendar shows timed and recurring sends on their days, and the campaign form shows the size
of the audience chosen."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from models import Segment
from tests.factories import add_campaign, add_contacts, add_template
from tests.ui.conftest import screenshot


def test_calendar_of_scheduled_and_recurring_sends(app: Flask, login: Callable[[str], Any]) -> None:
    now = datetime.now(UTC)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    soon = next_month.replace(
        day=3, hour=14, minute=30, second=0, microsecond=0
    )  # every Monday of it is ahead
    with app.app_context():
        template = add_template(db())
        add_campaign(db(), template.id, name="Black Friday",
                     schedule={"kind": "at", "send_at": soon.isoformat(), "timezone": "UTC"})  # fmt: skip
        add_campaign(db(), template.id, name="Monday picks",
                     schedule={"kind": "recurring", "cron": "0 9 * * MON", "timezone": "UTC"})  # fmt: skip
    page = login("viewer")
    page.goto(f"/calendar?month={soon:%Y-%m}")
    listing = page.locator("#calendar-list")
    expect(listing).to_contain_text("Black Friday")
    expect(listing).to_contain_text(f"{soon:%Y-%m-%d} 14:30")
    mondays = listing.locator("tr", has_text="Monday picks")
    expect(mondays.first).to_contain_text("recurring")
    assert 4 <= mondays.count() <= 5
    expect(page.locator("#calendar .cal-entry.scheduled", has_text="Black Friday")).to_have_count(1)
    screenshot(page, "calendar")
    page.locator("#calendar .cal-entry", has_text="Black Friday").click()
    expect(page.get_by_role("heading", name="Black Friday")).to_be_visible()


def test_the_campaign_form_shows_the_audience_size(app: Flask, login: Callable[[str], Any]) -> None:
    with app.app_context():
        add_contacts(db(), 12)
        add_template(db())
        db().add(Segment(name="Everyone in the UK", rules={"field": "country", "value": "United Kingdom"}))
        db().add(Segment(name="Nobody", rules={"field": "country", "value": "Atlantis"}))
        db().commit()
    page = login("marketer")
    page.goto("/campaigns/new")
    size = page.locator("#audience-size")
    expect(size).to_have_text("12 contacts can be sent to")
    page.get_by_role("combobox", name="Audience").select_option(label="Nobody")
    expect(size).to_have_text("0 contacts can be sent to")
    page.get_by_role("combobox", name="Audience").select_option(label="Everyone in the UK")
    expect(size).to_have_text("12 contacts can be sent to")
    when, zone = page.locator("#f-send_at").bounding_box(), page.locator("#f-timezone").bounding_box()
    assert when is not None and zone is not None
    assert (
        when["x"] + when["width"] <= zone["x"] or when["y"] + when["height"] <= zone["y"]
    )  # side by side, apart
    screenshot(page, "campaign-new-audience-size")  # a name of its own: tests run in parallel
