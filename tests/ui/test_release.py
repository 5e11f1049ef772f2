"""Releasing AI content in a real browser: an approver approves a stage a marketer asked for (four
eyes), the kill switch works from the control panel, and a viewer can look but change nothing."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.rollout import changes, service
from campaigns.rollout.machine import transition
from models import Campaign, Rollout, Send
from tests.factories import add_campaign, add_catalog, add_contacts, add_matured_sends, add_template
from tests.ui.conftest import Outbox, screenshot

PLAN = [
    {"name": "10%", "kind": "percent", "exposure_bp": 1000, "gates": {}},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": {}},
    {"name": "100%", "kind": "percent", "exposure_bp": 10000, "gates": {}},
]


def started_rollout(app: Flask, **settings: Any) -> int:
    with app.app_context():
        settings.setdefault("plan", "manual")  # gate-less stages: chosen explicitly
        rollout = changes.create_rollout(db(), "AI picks", "marketer@example.com", stages=PLAN, **settings)
        transition(db(), rollout, "start", "marketer@example.com", "first ring")
        db().commit()
        return int(rollout.id)


def test_approver_approves_a_stage(app: Flask, login: Callable[[str], Any]) -> None:
    rollout_id = started_rollout(app, approval_from_bp=2500)
    with app.app_context():
        add_matured_sends(db(), rollout_id)  # the 10% stage's evidence has matured
    marketer = login("marketer")
    marketer.goto(f"/rollouts/{rollout_id}")
    marketer.locator("#action-reason").fill("10% looks healthy")
    marketer.get_by_role("button", name="Advance to 50% (needs approval)").click()
    expect(marketer.get_by_role("status").first).to_contain_text("an approver other than you must approve it")
    expect(marketer.locator("#approval-1")).to_contain_text("You asked for this")
    screenshot(marketer, "rollout-awaiting-approval")

    approver = login("approver")
    expect(approver.get_by_role("link", name="Approvals")).to_contain_text("1")
    approver.get_by_role("link", name="Approvals").click()
    expect(approver.locator("#approval-1")).to_contain_text("10% looks healthy")
    screenshot(approver, "approvals")
    approver.get_by_label("Your reason").fill("metrics and guardrails hold")
    approver.get_by_role("button", name="Approve and apply").click()
    expect(approver.get_by_role("status").first).to_contain_text(
        re.compile(r"the rollout is now ramping at stage \S+ \(2 of")
    )
    approver.goto(f"/rollouts/{rollout_id}")
    expect(approver.locator("#exposure-now")).to_have_text("50%")
    expect(approver.locator("ol.timeline li.current")).to_contain_text("50%")
    approver.get_by_role("link", name="Audit log").first.click()
    expect(approver.locator("#audit-log")).to_contain_text("metrics and guardrails hold")
    screenshot(approver, "audit-log")


def test_kill_switch_from_the_ui(
    app: Flask, login: Callable[[str], Any], run_jobs: Callable[[], int], outbox: Outbox
) -> None:
    with app.app_context():
        ids = add_contacts(db(), 30)
        add_catalog(db(), ids)
        template = add_template(db())
        campaign = add_campaign(
            db(), template.id, ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"}
        )
        campaign_id, rollout_id = campaign.id, campaign.rollout_id
    marketer = login("marketer")
    marketer.goto(f"/campaigns/{campaign_id}")
    marketer.get_by_label("Contacts in this wave").fill("10")
    marketer.get_by_role("button", name="Send wave").click()
    marketer.get_by_role(
        "button", name=re.compile(r"^Send to [\d,]+ contacts now$")
    ).click()  # the confirmation
    expect(marketer.get_by_role("status").first).to_contain_text("Wave 1 started")
    run_jobs()
    expect(marketer.locator("#send-progress")).to_contain_text("10 of 10 processed: done")
    marketer.get_by_role("link", name="AI content: Weekly picks").first.click()
    expect(marketer.locator("#exposure-now")).to_have_text("100%")
    marketer.get_by_label("Why stop the AI content?").fill("a broken product feed")
    marketer.get_by_role("button", name="Kill switch").click()  # the confirmation is accepted
    expect(marketer.get_by_role("status").first).to_contain_text("Kill switch on")
    expect(marketer.locator("#rollout-state")).to_contain_text("killed")
    expect(marketer.locator("#exposure-now")).to_have_text("0%")
    screenshot(marketer, "rollout-killed")
    with app.app_context():
        assert service.is_killed(db(), int(rollout_id or 0))

    marketer.goto(f"/campaigns/{campaign_id}")
    marketer.get_by_role("button", name="Send wave").click()
    marketer.get_by_role(
        "button", name=re.compile(r"^Send to [\d,]+ contacts now$")
    ).click()  # the confirmation
    run_jobs()
    contents: dict[int, set[str]] = {}
    with app.app_context():
        for wave_id, content in db().execute(sa.select(Send.wave_id, Send.content).distinct()):
            contents.setdefault(int(wave_id or 0), set()).add(str(content))
    first, second = sorted(contents)
    assert contents[first] == {"ai"} and contents[second] == {"control"}  # before and after the kill
    assert len(outbox.messages()) == 30


def wait_until(page: Any, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Let the browser's events run until `condition` holds (a state, not a fixed time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def test_a_wave_finishing_does_not_undo_a_click_on_a_link(
    app: Flask, login: Callable[[str], Any], run_jobs: Callable[[], int]
) -> None:
    """The cause of the intermittent `test_kill_switch_from_the_ui`: the campaign page polls the
    wave's progress and, once finished, used to *reload* itself. A reload is a navigation: when the
    poll's answer came while the marketer's click on the rollout link was on its way, the reload
    cancelled the click and the campaign page (campaign "paused", no #exposure-now) came back.
    Here the two are lined up on purpose: the rollout page's request and the poll's answer are held,
    the poll says "finished" while the click is pending, and the click must still win."""
    with app.app_context():
        add_contacts(db(), 6)
        template = add_template(db())
        campaign = add_campaign(
            db(), template.id, ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"}
        )
        campaign_id, rollout_id = campaign.id, campaign.rollout_id
    page = login("marketer")
    page.goto(f"/campaigns/{campaign_id}")
    page.get_by_role("button", name="Send wave").click()
    page.get_by_role("button", name=re.compile(r"^Send to [\d,]+ contacts now$")).click()  # the confirmation
    expect(page.get_by_role("status").first).to_contain_text("Wave 1 started")
    held_polls: list[Any] = []
    held_pages: list[Any] = []
    page.route(f"**/campaigns/{campaign_id}/progress", lambda route: held_polls.append(route))
    page.route(f"**/rollouts/{rollout_id}", lambda route: held_pages.append(route))
    wait_until(page, lambda: bool(held_polls), "a progress poll")
    run_jobs()  # the wave is finished: the held poll's real answer says so
    page.get_by_role("link", name="AI content: Weekly picks").first.click(no_wait_after=True)
    wait_until(page, lambda: bool(held_pages), "the click's request")
    page.unroute(f"**/campaigns/{campaign_id}/progress")
    # "finished" arrives while the click is pending; the page then asks for itself again (a reload
    # once, a fetch now): wait for that request before letting the click's request through
    with page.expect_request(lambda request: request.url.endswith(f"/campaigns/{campaign_id}")):
        held_polls[0].continue_()
    page.unroute(f"**/rollouts/{rollout_id}")
    for held in held_pages:
        with contextlib.suppress(Exception):  # cancelled by then: the failure this test is about
            held.continue_()
    expect(page).to_have_url(re.compile(rf"/rollouts/{rollout_id}$"))
    expect(page.locator("#exposure-now")).to_have_text("100%")


def test_viewer_cannot_change_anything(app: Flask, login: Callable[[str], Any], live_server: str) -> None:
    rollout_id = started_rollout(app)
    with app.app_context():
        ids = add_contacts(db(), 3)
        template = add_template(db())
        campaign = add_campaign(db(), template.id, rollout_id=rollout_id)
        pages = ["/", "/contacts", f"/contacts/{ids[0]}", "/segments", "/catalog", "/templates",
                 f"/templates/{template.id}", f"/templates/{template.id}/preview", "/campaigns",
                 f"/campaigns/{campaign.id}", "/calendar", "/outbox", "/rollouts", f"/rollouts/{rollout_id}", "/approvals",
                 "/audit", "/models"]  # fmt: skip
    viewer = login("viewer")
    for path in pages:
        response = viewer.goto(path)
        assert response is not None and response.status == 200, path
        assert viewer.locator("main form[method=post]").count() == 0, path
        assert viewer.locator("main button[type=submit]:not(form[method=get] button)").count() == 0, path
        screenshot(viewer, "viewer-" + (path.strip("/").replace("/", "-") or "dashboard"))
    viewer.goto(f"/rollouts/{rollout_id}")
    expect(viewer.get_by_role("button", name="Kill switch")).to_have_count(0)
    screenshot(viewer, "viewer-rollout")
    token = viewer.locator('meta[name="csrf-token"]').get_attribute("content")
    for path in (f"/rollouts/{rollout_id}/act/kill", f"/campaigns/{campaign.id}/waves", "/segments/new",
                 f"/campaigns/{campaign.id}/cancel", "/imports/contacts"):  # fmt: skip
        refused = viewer.request.post(f"{live_server}{path}", form={"reason": "x", "csrf_token": token or ""})
        assert refused.status == 403, path
    with app.app_context():
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None and not rollout.killed
        assert db().get(Campaign, campaign.id).status == "draft"  # type: ignore[union-attr]


def test_a_segment_is_excluded_and_included_again_from_the_control_panel(
    app: Flask, login: Callable[[str], Any]
) -> None:
    from models import Segment

    with app.app_context():
        france = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
        db().add(france)
        db().commit()
        segment_id = int(france.id)
    rollout_id = started_rollout(app, report_segments=[segment_id])
    marketer = login("marketer")
    marketer.goto(f"/rollouts/{rollout_id}")
    expect(marketer.locator("#manual-plan")).to_contain_text("manual plan")
    expect(marketer.locator("#stage-matures")).to_contain_text("nothing sent in this stage yet")
    row = marketer.locator("#report-segments tbody tr")
    expect(row).to_contain_text("France")
    expect(row).to_contain_text("included")
    row.get_by_label("Reason").fill("conversions fell in France")
    marketer.locator(f"#segment-{segment_id}-exclude").click()
    expect(marketer.get_by_role("status").first).to_contain_text(f"Segment {segment_id} excluded")
    expect(row).to_contain_text("excluded")
    screenshot(marketer, "rollout-segment-excluded")
    row.get_by_label("Reason").fill("the feed is fixed")
    marketer.locator(f"#segment-{segment_id}-include").click()
    expect(marketer.get_by_role("status").first).to_contain_text(f"Segment {segment_id} included")
    marketer.get_by_role("link", name="Audit log").first.click()
    expect(marketer.locator("#audit-log")).to_contain_text("conversions fell in France")
