"""The README's "Your first campaign", walked in a browser as written: every UI name the test clicks or
fills is checked to appear in that section of the README, so the two cannot drift apart. The send
goes through its confirmation page (contacts, arms, segment, when) before anything is queued."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from models import Contact, Send
from tests.factories import add_catalog
from tests.ui.conftest import Outbox, screenshot
from tests.ui.test_marketer_journey import contacts_csv

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Your first campaign")
    return " ".join(text[start : text.index("\n## ", start + 5)].split())  # README lines wrap


SECTION = _section()


def said(name: str) -> str:
    """`name`, after checking the README's first-campaign steps name it in bold."""
    assert f"**{name}**" in SECTION or f"**{name} " in SECTION or f" {name}**" in SECTION, (
        f"the README's first-campaign steps do not name {name!r}"
    )
    return name


def test_the_readme_first_campaign_as_written(
    app: Flask, login: Callable[[str], Any], run_jobs: Callable[[], int], outbox: Outbox
) -> None:
    page = login("marketer")

    # 1. Import contacts
    page.get_by_role("link", name=said("Contacts"), exact=True).first.click()
    assert "**Import**" in SECTION
    page.get_by_label(said("Contacts CSV")).set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": contacts_csv()}]
    )
    page.get_by_role("button", name=said("Import contacts csv")).click()
    expect(page.locator("#rows-imported")).to_have_text("48")
    expect(page.locator("#error-report tbody tr")).to_have_count(3)  # by line and field
    with app.app_context():
        add_catalog(db(), list(db().scalars(sa.select(Contact.id))))  # recommendations need a catalog

    # 2. A segment, with its live count
    assert "**Segments → New segment**" in SECTION
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_role("textbox", name=said("Name"), exact=True).fill("Pro plan")
    assert "`attributes.plan` equal to `pro`" in SECTION
    page.locator("#field-0").fill("attributes.plan")
    page.locator("#value-0").fill("pro")
    expect(page.locator("#live-count")).to_have_text("40 contacts match")
    page.get_by_role("button", name=said("Save segment")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved segment Pro plan")

    # 3. A template with AI content, previewed side by side
    assert "**Templates → New template**" in SECTION
    page.get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="New template").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Weekly picks")
    page.get_by_label(said("AI block")).fill(
        "<ul>{% for item in recommendations %}<li>{{ item.name }}</li>{% endfor %}</ul>"
    )
    page.get_by_role("button", name=said("Save and preview")).click()
    page.get_by_label(said("Preview for contact")).fill("person7@example.com")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-subject="control"]')).to_contain_text("Picked for you, Person")
    expect(
        page.frame_locator('iframe[title="AI personalized version of the email"]').locator("li").first
    ).to_be_visible()

    # 4. The campaign and its plan
    assert "**Campaigns → New campaign**" in SECTION and "**Settings → Rollout plan**" in SECTION
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Spring picks")
    page.get_by_role("combobox", name=said("Template")).select_option(label="Weekly picks")
    page.get_by_role("combobox", name=said("Audience")).select_option(label="Pro plan")
    page.get_by_label(said("From address")).fill("shop@example.com")
    page.get_by_label(said("Send AI content to part of the audience behind a rollout")).check()
    page.get_by_label(said("Exposure %")).fill("50")
    page.get_by_label(said("Holdout %")).fill("10")
    page.get_by_label(said("Manual plan: one stage straight at this exposure")).check()  # 40 contacts
    page.get_by_role("button", name=said("Create campaign")).click()
    expect(page.get_by_role("status")).to_contain_text("Created campaign Spring picks")

    # 5. Send, with a confirmation: nothing is queued before it
    page.get_by_label(said("Contacts in this wave")).fill("")
    page.get_by_role("button", name=said("Send wave…")).click()
    expect(page.get_by_role("heading", name="Send a wave of Spring picks?")).to_be_visible()
    facts = page.locator("#wave-confirm-facts")
    expect(facts.locator("[data-wave-contacts]")).to_have_text("40")
    expect(facts).to_contain_text("Pro plan")  # the segment
    expect(facts).to_contain_text("AI (AI content)")
    expect(facts).to_contain_text("control (control content)")
    expect(facts).to_contain_text("holdout")
    expect(facts).to_contain_text("Now")  # when
    screenshot(page, "wave-confirm")
    with app.app_context():
        assert db().scalar(sa.select(sa.func.count()).select_from(Send)) == 0
    assert "**Send to N contacts now**" in SECTION
    page.get_by_role("button", name="Send to 40 contacts now").click()
    expect(page.get_by_role("status")).to_contain_text("Wave 1 started: 40 contacts")
    assert run_jobs() > 0
    expect(page.locator("#send-progress")).to_contain_text("40 of 40 processed: done", timeout=15_000)

    # 6. Watch it: the outbox with the arm, search, one click to a message; the rollout
    page.get_by_role("link", name=said("Outbox")).click()
    expect(page.get_by_role("heading", name=re.compile("Outbox"))).to_contain_text("40 messages")
    page.get_by_label("Search address or subject").fill("person7@example.com")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(3)).to_have_text(re.compile(r"^(AI|control|holdout)$"))
    rows.first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile("Picked for you"))).to_be_visible()
    page.get_by_role("link", name=said("Rollouts")).click()
    expect(page.get_by_role("link", name=re.compile("Spring picks"))).to_be_visible()
