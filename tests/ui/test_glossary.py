"""The glossary is one click from the rollout page, and says what the rollout's words mean."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.rollout import changes


def test_glossary_linked_from_the_rollout_page(app: Flask, login: Callable[[str], Any]) -> None:
    with app.app_context():
        rollout = changes.create_rollout(db(), "Picks", "marketer@example.com")
        db().commit()
        rollout_id = rollout.id
    page = login("viewer")
    page.goto(f"/rollouts/{rollout_id}")
    page.locator("#glossary-link").click()
    expect(page.get_by_role("heading", name="Glossary")).to_be_visible()
    for term in ("Always valid", "Matured", "Holdout", "Sample-ratio mismatch (SRM)", "Guardrail"):
        expect(page.locator("dt", has_text=term).first).to_be_visible()
    expect(page.locator("#lift + dd")).to_contain_text("never goes below -100%")
