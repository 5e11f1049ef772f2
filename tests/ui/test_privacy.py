"""Consent and privacy in a real browser: a person signs up on the hosted form, confirms from the
email in the outbox, and an admin sees the consent history, erases the person, and finds the erasure
in the audit log."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.privacy.signup_forms import create_form
from campaigns.sending.outbox import read_message
from models import Contact
from tests.ui.conftest import Outbox, screenshot

WORDING = "Yes, email me the weekly picks. I can unsubscribe at any time."


def test_signup_confirm_history_and_erasure(
    app: Flask, login: Callable[[str], Any], new_page: Callable[[], Any], outbox: Outbox
) -> None:
    with app.app_context():
        create_form(db(), {"slug": "weekly", "name": "Weekly picks", "wording": WORDING})
        db().commit()
    person = new_page()
    person.goto("/s/weekly")
    person.get_by_label("Email address").fill("reader@example.com")
    person.get_by_label("Name (optional)").fill("Rita Reader")
    person.get_by_label(WORDING).check()
    screenshot(person, "signup-form")
    person.get_by_role("button", name="Sign up").click()
    expect(person.get_by_role("heading", name="Check your inbox")).to_be_visible()

    [entry] = outbox.messages()
    assert entry.to == "reader@example.com" and entry.subject == "Please confirm your subscription"
    message = read_message(outbox.path, entry.key)
    assert message is not None
    link = re.search(r"https?://\S+/s/confirm/\S+", message.get_content())
    assert link
    person.goto(link.group(0))
    person.get_by_role("button", name="Yes, subscribe me").click()
    expect(person.get_by_role("heading", name="You are subscribed")).to_be_visible()

    with app.app_context():
        contact = db().scalars(sa.select(Contact)).one()
        assert contact.consent is True
        contact_id = contact.id
    admin = login("admin")
    admin.goto(f"/contacts/{contact_id}")
    table = admin.locator("#consent-table")
    expect(table).to_contain_text("signup form")
    expect(table).to_contain_text("confirmation link")
    expect(table).to_contain_text(WORDING)
    screenshot(admin, "contact-consent-history")
    admin.get_by_label("Reason (the request's reference)").fill("erasure request 2026-118")
    admin.get_by_role("button", name="Erase").click()  # the confirmation is accepted
    expect(admin.get_by_role("status").first).to_contain_text(f"Contact {contact_id} is erased")
    admin.get_by_role("link", name="Audit log").first.click()
    log = admin.locator("#audit-log")
    expect(log).to_contain_text("erasure request 2026-118")
    expect(log).not_to_contain_text("reader@example.com")
    screenshot(admin, "audit-log-erasure")
    with app.app_context():
        assert db().scalar(sa.select(sa.func.count()).select_from(Contact)) == 0
