"""The demo tells the story in the browser: a staged AI rollout that went through its stages on the
evaluator's decisions, with charts and intervals, a shadow comparison, and a second rollout rolled
back by a guardrail; every page says the recipients were simulated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.demo.simulate import SIMULATED_AGENT
from campaigns.demo.story import ROLLOUT_A, ROLLOUT_B, build_story
from campaigns.demo.workspace import build_demo
from models import Event, Rollout, RolloutAudit, Send, ShadowRender
from tests.ui.conftest import screenshot


def test_the_demo_story(app: Flask, login: Callable[[str], Any]) -> None:
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=1500)
        db().commit()
        summary = build_story(db(), app.extensions["mailramp"])
        assert summary.rollouts == {ROLLOUT_A: "completed", ROLLOUT_B: "rolled_back"}
        assert build_story(db(), app.extensions["mailramp"]).built is False  # once only
        a = db().scalar(sa.select(Rollout).where(Rollout.name == ROLLOUT_A))
        b = db().scalar(sa.select(Rollout).where(Rollout.name == ROLLOUT_B))
        assert a is not None and b is not None
        # the real engine wrote it: the ledger, tracked events, shadow renders, the machine's audit
        assert (
            db().scalar(sa.select(sa.func.count()).where(Send.rollout_id == a.id, Send.state == "sent"))
            == 4000
        )
        assert db().scalar(sa.select(sa.func.count()).where(Event.user_agent == SIMULATED_AGENT)) > 1000
        assert db().scalar(sa.select(sa.func.count()).select_from(ShadowRender)) > 50
        moves = list(db().scalars(sa.select(RolloutAudit.action).where(RolloutAudit.rollout_id == a.id)))
        assert moves.count("advance") == 4
        rollout_a, rollout_b = a.id, b.id

    page = login("viewer")
    page.get_by_role("link", name="Rollouts", exact=True).click()
    expect(page.locator("main")).to_contain_text(ROLLOUT_A)
    expect(page.locator("main")).to_contain_text(ROLLOUT_B)
    screenshot(page, "demo-rollouts")

    page.goto(f"/rollouts/{rollout_a}")
    expect(page.locator("#simulated-note")).to_contain_text("simulated recipients")
    expect(page.locator("#rollout-state")).to_contain_text("completed")
    expect(page.locator("#completed-without-evidence")).to_be_visible()  # 1,000 a week: no power
    expect(page.locator("article.decision").first).to_be_visible()
    expect(page.locator("main")).to_contain_text("advance")
    for chart in ("exposure-chart", "primary-arms-chart", "primary-lift-chart"):
        expect(page.locator(f"canvas#{chart}[data-drawn=true]")).to_be_visible()
    expect(page.locator("#shadow-report")).to_be_visible()
    screenshot(page, "demo-rollout-completed")

    page.goto(f"/rollouts/{rollout_b}")
    expect(page.locator("#rollout-state")).to_contain_text("rolled back")
    expect(page.locator("article.decision", has_text="rollback").first).to_contain_text("unsubscribe")
    screenshot(page, "demo-rollout-rolled-back")

    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.get_by_role("link", name="Weekly picks #3 (simulated)").click()
    expect(page.locator("#engagement")).to_contain_text("simulated recipients")
    for outcome in ("opened", "clicked", "converted"):
        expect(page.locator(f"canvas#engagement-{outcome}[data-drawn=true]")).to_be_visible()
    expect(page.locator("#results-per-segment")).to_contain_text("UK customers")
    screenshot(page, "demo-campaign")
    page.get_by_role("link", name="Calendar").click()
    screenshot(page, "demo-calendar")
    page.get_by_role("link", name="Dashboard").click()
    screenshot(page, "demo-dashboard")
