"""A marketer's journey in a real browser: contacts, a segment built with a live count, a campaign
with an AI rollout, a wave sent through a real worker, and the results with their charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from models import Contact
from tests.ui.conftest import screenshot


def seed_contacts(app: Flask, n: int = 40) -> None:
    with app.app_context():
        for i in range(n):
            country = "France" if i % 2 else "Spain"
            db().add(
                Contact(email=f"c{i}@example.com", name=f"C {i}", country=country, attributes={"age": 20 + i})
            )
        db().commit()


def test_segment_builder_live_count(app: Flask, login: Callable[[str], Any]) -> None:
    seed_contacts(app)
    page = login("marketer")
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name").fill("French adults")
    page.locator("#field-0").fill("country")
    page.locator("#value-0").fill("France")
    expect(page.locator("#live-count")).to_have_text("20 contacts match")
    page.get_by_role("button", name="Add condition").click()
    page.locator("#field-1").fill("attributes.age")
    page.locator("#op-1").select_option("ge")
    page.locator("#value-1").fill("50")
    expect(page.locator("#live-count")).to_have_text("5 contacts match")
    screenshot(page, "segment-builder")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status")).to_contain_text("Saved segment French adults")
