"""A marketer's journey in a real browser: import contacts (a file with bad rows: the error report),
build a segment with a live count, write a template, create a campaign with an AI rollout, send a wave
through a real rq worker to a real SMTP server, and see results per arm, decisions and charts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.auth import issue_token
from app.extensions import db
from campaigns.events.ingest import ingest
from models import Campaign, Contact, Send, User
from tests.factories import add_catalog
from tests.ui.conftest import Outbox, screenshot


def contacts_csv(n: int = 48) -> bytes:
    lines = ["email,name,country,plan,consent"]
    for i in range(n):
        lines.append(
            f"person{i}@example.com,Person {i},{'France' if i % 3 else 'Spain'},{'pro' if i % 6 else 'free'},yes"
        )
    lines.insert(5, "not-an-email,Broken,Spain,pro,yes")  # line 6 of the file
    lines.insert(9, "person1@example.com,Twice,France,pro,yes")  # line 10: a duplicate of line 3
    lines.insert(12, "odd@example.com,Odd,France,pro,maybe")  # line 13: bad consent
    return ("\n".join(lines) + "\n").encode()


def test_marketer_journey(
    app: Flask,
    login: Callable[[str], Any],
    run_jobs: Callable[[], int],
    outbox: Outbox,
    live_server: str,
) -> None:
    page = login("marketer")

    # contacts: a file with bad rows; every good row is imported, the bad ones are reported by line
    page.get_by_role("link", name="Contacts").click()
    page.get_by_label("Contacts CSV").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": contacts_csv()}]
    )
    page.get_by_role("button", name="Import contacts csv").click()
    expect(page.get_by_role("heading", name="Import: people.csv")).to_be_visible()
    expect(page.locator("#rows-imported")).to_have_text("48")
    expect(page.locator("#rows-failed")).to_have_text("3")
    report = page.locator("#error-report tbody tr")
    expect(report).to_have_count(3)
    expect(report.nth(0)).to_contain_text("6")
    expect(report.nth(0)).to_contain_text("email")
    expect(report.nth(2)).to_contain_text("consent")
    screenshot(page, "contacts-import-errors")
    page.get_by_role("link", name="Contacts", exact=True).first.click()
    page.get_by_label("Search email or name").fill("person1")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="person1@example.com").click()
    expect(page.get_by_role("heading", name="Person 1")).to_be_visible()
    with app.app_context():
        ids = list(db().scalars(sa.select(Contact.id).order_by(Contact.id)))
        add_catalog(db(), ids)

    # a segment from the rule builder, with its live count
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Pro plan")
    page.locator("#field-0").fill("attributes.plan")
    page.locator("#value-0").fill("pro")
    expect(page.locator("#live-count")).to_have_text("40 contacts match")
    screenshot(page, "segment-builder")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("status")).to_contain_text("Saved segment Pro plan")

    # a template: the starter is valid; save, then the preview shows control and AI side by side
    page.get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="New template").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Weekly picks")
    page.get_by_label("AI block").fill(
        "<ul>{% for item in recommendations %}<li>{{ item.name }</li>{% endfor %}</ul>"
    )
    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_role("alert")).to_contain_text("ai_html, line 1")
    page.get_by_label("AI block").fill(
        "<ul>{% for item in recommendations %}<li>{{ item.name }}</li>{% endfor %}</ul>"
    )
    page.get_by_role("button", name="Save and preview").click()
    page.get_by_label("Preview for contact").fill("person7@example.com")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-subject="control"]')).to_contain_text("Picked for you, Person")
    ai_frame = page.frame_locator('iframe[title="AI personalized version of the email"]')
    expect(ai_frame.locator("li").first).to_be_visible()
    screenshot(page, "template-preview")

    # a campaign with an AI rollout, one wave, sent by a real worker to a real SMTP server
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Spring picks")
    page.get_by_role("combobox", name="Template").select_option(label="Weekly picks")
    page.get_by_role("combobox", name="Audience").select_option(label="Pro plan")
    page.get_by_label("From address").fill("shop@example.com")
    page.get_by_label("Send AI content to part of the audience behind a rollout").check()
    page.get_by_label("Exposure %").fill("50")
    page.get_by_label("Holdout %").fill("10")
    page.get_by_label("Manual plan: one stage straight at this exposure").check()  # 40 contacts: no ramp
    screenshot(page, "campaign-new")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("status")).to_contain_text("Created campaign Spring picks")
    page.get_by_role("button", name="Send wave").click()
    page.get_by_role("button", name=re.compile(r"^Send to [\d,]+ contacts now$")).click()  # the confirmation
    expect(page.get_by_role("status")).to_contain_text("Wave 1 started: 40 contacts")
    expect(page.locator("#send-progress")).to_contain_text("sending")
    assert run_jobs() > 0
    expect(page.locator("#send-progress")).to_contain_text("40 of 40 processed: done", timeout=15_000)
    assert len(outbox.messages()) == 40
    results = page.locator("#results-per-arm")
    expect(results).to_contain_text("treatment")
    expect(results).to_contain_text("control")
    expect(page.locator("canvas#campaign-funnel[data-drawn=true]")).to_be_visible()

    # recipients convert (through the API, as a shop would), the ingest worker stores it
    with app.app_context():
        campaign = db().scalar(sa.select(Campaign))
        assert campaign is not None
        user = db().scalar(sa.select(User).where(User.email == "marketer@example.com"))
        assert user is not None
        token = issue_token(user, "shop")
        db().commit()
        sends = (
            db()
            .execute(sa.select(Send.arm, Contact.email).join(Contact, Contact.id == Send.contact_id))
            .all()
        )
    buyers = [email for arm, email in sends if arm == "treatment"][:8] + [
        e for a, e in sends if a == "control"
    ][:3]
    for email in buyers:
        done = page.request.post(
            f"{live_server}/api/v1/conversions",
            data=json.dumps({"campaign_id": campaign.id, "email": email, "value": 25.0}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert done.status == 202
    ingest(app.extensions["mailramp"])
    page.reload()
    expect(results).to_contain_text("£200.00")  # 8 treatment buyers of 25.00
    screenshot(page, "campaign")

    # the rollout: a small-sample policy for this demo, then an evaluation with its evidence and charts
    page.get_by_role("link", name="AI content: Spring picks").first.click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Fewest recipients per arm").fill("10")
    page.get_by_label("Advance when").select_option("better")
    page.get_by_label("conversion (hours)").fill("0")  # the demo cannot wait 72 h for conversions to mature
    page.get_by_label("Reason for the change").fill("small demo audience")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")
    page.get_by_role("button", name="Evaluate now").click()
    expect(page.get_by_role("status")).to_contain_text("Evaluated")
    before = page.locator("article.decision").count()
    page.get_by_role("button", name="Evaluate now").click()
    expect(page.locator("article.decision")).to_have_count(before + 1)
    expect(page.locator("article.decision").first).to_contain_text("conversion rate")
    for chart in ("exposure-chart", "primary-arms-chart", "primary-lift-chart"):
        expect(page.locator(f"canvas#{chart}[data-drawn=true]")).to_be_visible()
    screenshot(page, "rollout-panel")
    page.get_by_role("link", name="Printable report").click()
    expect(page.locator("canvas#report-primary-lift[data-drawn=true]")).to_be_visible()
    screenshot(page, "rollout-report")

    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("#dashboard-rollouts tbody tr").first
    expect(row).to_contain_text("AI content: Spring picks")
    expect(row).to_contain_text("conversion rate")
    screenshot(page, "dashboard")
    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox")).to_contain_text("40 messages")
    screenshot(page, "outbox")
    page.locator("main table a").first.click()
    expect(page.frame_locator("iframe.preview").locator("body")).to_contain_text("Hello")
    screenshot(page, "outbox-message")
