"""At 390 px (a phone) no main page is wider than the screen: tables scroll inside their box, forms
stack in one column. Screenshots of each go to tests/artifacts/phone-*.png."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.extensions import db
from tests.factories import add_campaign, add_catalog, add_contacts, add_template
from tests.ui.conftest import Users, screenshot

PAGES = ["/", "/contacts", "/segments", "/catalog", "/templates", "/campaigns", "/campaigns/new", "/calendar",
         "/outbox", "/rollouts", "/approvals", "/audit", "/models"]  # fmt: skip


def test_main_pages_fit_a_phone(app: Flask, browser: Any, live_server: str, users: Users) -> None:
    with app.app_context():
        ids = add_contacts(db(), 60)
        add_catalog(db(), ids)
        campaign = add_campaign(
            db(), add_template(db()).id, ai={"exposure_percent": 20, "holdout_percent": 5}
        )
        pages = [*PAGES, f"/campaigns/{campaign.id}", f"/rollouts/{campaign.rollout_id}",
                 f"/rollouts/{campaign.rollout_id}/settings", f"/contacts/{ids[0]}"]  # fmt: skip
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(users.emails["marketer"])
        page.get_by_label("Password").fill(users.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        too_wide = {}
        for path in pages:
            response = page.goto(path)
            assert response is not None
            if response.status == 404:
                continue
            assert response.status == 200, path
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 392:
                culprit = page.evaluate(
                    """() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 392)
                        .slice(0, 3).map((e) => e.tagName + '.' + e.className + '#' + e.id)"""
                )
                too_wide[path] = (width, culprit)
            screenshot(page, "phone-" + (path.strip("/").replace("/", "-") or "dashboard"))
        assert not too_wide, f"wider than 390 px: {too_wide}"
    finally:
        context.close()
