"""axe-core (WCAG 2.1 AA) on every page type, at 1280 px and at 390 px, with every <details> panel
open ("The numbers" of each chart included); at 390 px no page is wider than the screen.

axe-core is vendored from the npm registry by scripts/vendor_assets.py (into tests/ui/vendor/, never
served by the app) and injected into each page by Playwright.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from campaigns import jobs
from campaigns.decisions.evaluation import run_evaluation
from models import ImportRun, Segment
from tests.factories import add_campaign, add_catalog, add_contacts, add_template
from tests.ui.conftest import Outbox, Users

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LIST_PAGES = ["/", "/contacts", "/segments", "/catalog", "/templates", "/campaigns", "/calendar", "/outbox",
              "/rollouts", "/approvals", "/audit", "/models", "/settings/users", "/settings/tokens",
              "/settings/webhooks", "/signup-forms"]  # fmt: skip
FORMS = ["/campaigns/new", "/segments/new", "/templates/new", "/rollouts/new", "/settings/rollout-plan",
         "/settings/sending-rules"]  # fmt: skip


def _workspace(app: Flask, run_jobs: Callable[[], int], outbox: Outbox) -> list[str]:
    """Contacts, a catalog, a segment, a campaign with an AI rollout sent to the outbox, a decision."""
    with app.app_context():
        ids = add_contacts(db(), 60)
        add_catalog(db(), ids)
        segment = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
        db().add(segment)
        template = add_template(db())
        campaign = add_campaign(db(), template.id, ai={"exposure_percent": 50, "holdout_percent": 5})
        db().commit()
        campaign_id, rollout_id, template_id, segment_id = (
            campaign.id,
            campaign.rollout_id,
            template.id,
            segment.id,
        )
        jobs.start_wave(app.extensions["mailramp"], campaign_id, 30)
    assert run_jobs() > 0
    with app.app_context():
        assert rollout_id is not None
        run_evaluation(rollout_id)
        run = db().scalar(sa.select(ImportRun.id).limit(1))
    key = outbox.messages()[0].key
    pages = [
        f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/waves/confirm", f"/campaigns/{campaign_id}/report",
        f"/rollouts/{rollout_id}", f"/rollouts/{rollout_id}/settings", f"/rollouts/{rollout_id}/report",
        f"/contacts/{ids[0]}", f"/segments/{segment_id}", f"/templates/{template_id}",
        f"/templates/{template_id}/preview", f"/outbox/{key}", "/outbox?q=example",
    ]  # fmt: skip
    if run is not None:
        pages.append(f"/imports/{run}")
    return [*LIST_PAGES, *FORMS, *pages]


def _audit(page: Any) -> list[str]:
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    page.evaluate("window.dispatchEvent(new Event('resize'))")
    page.wait_for_timeout(150)  # the page's resize handler is debounced by 100 ms
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_AA,
    )
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_type_passes_axe(
    app: Flask,
    browser: Any,
    live_server: str,
    users: Users,
    run_jobs: Callable[[], int],
    outbox: Outbox,
    width: int,
) -> None:
    assert AXE.exists(), "axe-core is not vendored: run `make install` (scripts/vendor_assets.py)"
    pages = _workspace(app, run_jobs, outbox)
    # bypass_csp: axe is injected as an inline script, which the app's CSP (rightly) forbids
    context = browser.new_context(
        base_url=live_server, viewport={"width": width, "height": 844}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto("/login")
        assert not _audit(page), _audit(page)
        page.get_by_label("Email").fill(users.emails["admin"])
        page.get_by_label("Password").fill(users.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        problems: dict[str, Any] = {}
        for path in pages:
            response = page.goto(path)
            assert response is not None and response.status == 200, (path, response and response.status)
            page.wait_for_load_state("networkidle")
            found = _audit(page)
            if found:
                problems[path] = found
            if width == 390:
                wide = page.evaluate("document.documentElement.scrollWidth")
                if wide > width + 2:
                    culprits = page.evaluate(
                        """(w) => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > w + 2)
                            .slice(-3).map((e) => e.tagName + '.' + e.className + '#' + e.id)""",
                        width,
                    )
                    problems[path + " (width)"] = (wide, culprits)
        assert not problems, problems
    finally:
        context.close()
