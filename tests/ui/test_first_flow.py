"""The README's first flow (step 7 of "Your first campaign"), walked in a browser as written: a
ready-made abandoned cart, its wait edited, activated; a contact's event enters it, a scheduler tick
moves the journey on, the next one sends the reminder to the outbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.flows.scheduler import run_due
from campaigns.flows.triggers import record_event
from models import utcnow
from tests.factories import add_contacts
from tests.ui.conftest import Outbox, screenshot
from tests.ui.test_first_campaign import SECTION, said


def test_the_readme_first_flow_as_written(
    app: Flask, login: Callable[[str], Any], run_jobs: Callable[[], int], outbox: Outbox
) -> None:
    page = login("marketer")
    page.get_by_role("link", name=said("Flows"), exact=True).click()
    assert "**Start from a ready-made flow**" in SECTION
    expect(page.get_by_role("heading", name="Start from a ready-made flow")).to_be_visible()
    cart = page.get_by_role("form", name="Abandoned cart")
    cart.get_by_label(said("From address")).fill("shop@example.com")
    cart.get_by_role("button", name=re.compile(said("Use this flow"))).click()
    expect(page.get_by_role("status")).to_contain_text("Created draft flow Abandoned cart")

    # the editor: the trigger, then the steps in order; an error shows at its field
    steps = page.locator("#flow-step-list > li")
    expect(steps).to_have_count(2)
    expect(steps.nth(0).get_by_role("heading")).to_have_text("Step 1: Wait")
    expect(steps.nth(1).get_by_role("heading")).to_have_text("Step 2: Send an email")
    page.get_by_label(said("Hours")).fill("-2")
    page.get_by_role("button", name=said("Save flow")).click()
    expect(page.locator("#step-0-hours-error")).to_contain_text("greater than or equal to 0")
    expect(page.get_by_label("Hours")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Hours").fill("1")
    screenshot(page, "flow-editor")
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_role("status")).to_contain_text("Saved flow Abandoned cart (version 2)")
    expect(page.locator("#flow-steps")).to_contain_text("Wait 1 hour")

    page.get_by_role("button", name=said("Activate")).click()
    expect(page.get_by_role("status")).to_contain_text("Activated flow Abandoned cart")
    screenshot(page, "flow-detail")

    # a contact puts something in the cart (the events API does this in a shop); the scheduler ticks
    with app.app_context():
        [contact] = add_contacts(db(), 1)
        assert record_event(db(), contact, "added_to_cart", key="cart-1")
        db().commit()
    now = utcnow()
    assert run_due(app.extensions["mailramp"], clock=lambda: now).advanced == 1
    page.get_by_role("link", name=re.compile("^" + said("Journeys"))).click()
    row = page.locator("table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("person0@example.com")
    expect(row.locator("td").nth(2)).to_have_text("reminder")
    later = now + timedelta(hours=1, seconds=1)
    assert run_due(app.extensions["mailramp"], clock=lambda: later).sent == 1
    run_jobs()
    page.reload()
    expect(row.locator("td").nth(1)).to_have_text("completed")
    screenshot(page, "flow-journeys")
    assert [str(m.subject) for m in outbox.messages()] == ["You left something in your cart"]
