"""Dangerous actions ask first, and say what will happen with this rollout's numbers; dismissing the
question changes nothing. The questions come from data-confirm attributes read by static/js/app.js
(no inline script: the Content-Security-Policy forbids them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.rollout import changes
from campaigns.rollout.machine import transition
from models import Rollout
from tests.factories import add_campaign, add_contacts, add_template
from tests.ui.conftest import dialogs, screenshot

PLAN = [
    {"name": "10%", "kind": "percent", "exposure_bp": 1000, "gates": {}},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": {}},
]


def rollout_with_campaign(app: Flask, contacts: int, start: bool = True) -> int:
    with app.app_context():
        rollout = changes.create_rollout(
            db(), "Picks", "marketer@example.com", stages=PLAN, holdout_bp=0, plan="manual"
        )
        if start:
            transition(db(), rollout, "start", "marketer@example.com", "first ring")
        db().commit()
        add_contacts(db(), contacts)
        add_campaign(db(), add_template(db()).id, rollout_id=rollout.id)
        return int(rollout.id)


def state_of(app: Flask, rollout_id: int) -> tuple[str, bool, str]:
    with app.app_context():
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None
        return rollout.state, rollout.killed, rollout.salt


def test_dangerous_actions_say_what_will_happen(app: Flask, login: Callable[[str], Any]) -> None:
    rollout_id = rollout_with_campaign(app, 2300)
    page = login("marketer")
    answers = dialogs(page)
    page.goto(f"/rollouts/{rollout_id}")
    answers.accept = False
    page.locator("#action-reason").fill("numbers look bad")
    page.get_by_role("button", name="Roll back").click()
    page.get_by_role("button", name="Kill switch").click()
    page.get_by_role("button", name="Advance to 50%").click()
    rollback, kill, advance = answers.messages
    assert "2,300 contacts not yet sent will get the control content" in rollback
    assert "cannot be undone" in rollback
    assert "2,300 contacts not yet sent will get the control content" in kill
    assert "About 1,150 of the 2,300 contacts not yet sent will get the AI content" in advance
    assert "no opens, clicks or conversions yet" in advance
    assert state_of(app, rollout_id)[:2] == ("ramping", False)  # dismissed: nothing happened
    expect(page.locator("#rollout-state")).to_contain_text("ramping")

    answers.accept = True
    page.locator("#action-reason").fill("numbers look bad")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#rollout-state")).to_contain_text("rolled back")
    assert state_of(app, rollout_id)[0] == "rolled_back"
    screenshot(page, "rollout-rolled-back")


def test_re_randomize_asks_first(app: Flask, login: Callable[[str], Any]) -> None:
    rollout_id = rollout_with_campaign(app, 40, start=False)
    salt = state_of(app, rollout_id)[2]
    page = login("marketer")
    answers = dialogs(page)
    page.goto(f"/rollouts/{rollout_id}/settings")
    answers.accept = False
    page.get_by_label("Re-randomize: reason").fill("bucketing audit")
    page.get_by_role("button", name="Re-randomize").click()
    assert "treatment, control and holdout all change for the 40 contacts not yet sent" in answers.messages[0]
    assert state_of(app, rollout_id)[2] == salt
    answers.accept = True
    page.get_by_role("button", name="Re-randomize").click()
    expect(page.get_by_role("status").first).to_contain_text("New salt")
    assert state_of(app, rollout_id)[2] != salt
