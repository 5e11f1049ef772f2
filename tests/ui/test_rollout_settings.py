"""Rollout settings in a real browser: the stage plan edited as rows (add, reorder, remove), a field
error shown at its field with what was typed kept, recurring freeze windows, then saved and audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from app.extensions import db
from campaigns.rollout import changes
from models import Rollout, Segment
from tests.ui.conftest import screenshot

PLAN = [
    {"name": "internal", "kind": "internal", "exposure_bp": 0, "gates": {}},
    {"name": "10%", "kind": "percent", "exposure_bp": 1000, "gates": {}},
    {"name": "100%", "kind": "percent", "exposure_bp": 10_000, "gates": {}},
]


def test_stage_plan_targeting_and_freeze_windows_as_forms(app: Flask, login: Callable[[str], Any]) -> None:
    with app.app_context():
        rollout = changes.create_rollout(db(), "Picks", "marketer@example.com", stages=PLAN, plan="manual")
        db().add(Segment(name="VIP customers", rules={"field": "country", "op": "eq", "value": "France"}))
        db().commit()
        rollout_id = rollout.id
    page = login("marketer")
    page.goto(f"/rollouts/{rollout_id}/settings")
    rows = page.locator("#stage-rows tr")
    expect(rows).to_have_count(3)
    screenshot(page, "rollout-settings")

    # a new 50% stage, added at the end then moved above 100%
    page.get_by_role("button", name="Add a stage").click()
    expect(rows).to_have_count(4)
    new = rows.nth(3)
    new.get_by_label("Stage name").fill("50%")
    new.get_by_label("Exposure %").fill("fifty")  # a typo: the error must come back at this field
    new.get_by_role("button", name="Move stage  up").click()
    expect(rows.nth(2).get_by_label("Stage name")).to_have_value("50%")
    # the internal stage goes
    rows.nth(0).get_by_role("button", name="Remove stage internal").click()
    expect(rows).to_have_count(3)
    page.get_by_label("Protected until a stage releases them").select_option(label="VIP customers")
    page.get_by_label("Allow-list (contact ids)").fill("4, 8, 15")
    page.get_by_role("button", name="Add a freeze window").click()
    window = page.locator(".freeze-row").last
    window.get_by_label("Repeats").select_option("weekly")
    window.get_by_label("Day (weekly)").select_option(label="Friday")
    window.get_by_label("From (time)").fill("18:00")
    window.get_by_label("For hours").fill("62")
    window.get_by_label("Time zone").fill("Europe/Paris")
    window.get_by_label("Why").fill("weekend: nobody watches")
    page.get_by_label("Reason for the change").fill("a 50% ring and a weekend freeze")
    page.get_by_role("button", name="Save settings").click()

    exposure = rows.nth(1).get_by_label("Exposure %")
    expect(page.get_by_role("alert")).to_contain_text("Not saved")
    expect(exposure).to_have_value("fifty")
    expect(exposure).to_have_attribute("aria-invalid", "true")
    expect(rows.nth(1).locator(".error-text")).to_contain_text("'fifty' is not a number")
    screenshot(page, "rollout-settings-error")
    with app.app_context():
        assert len(db().get(Rollout, rollout_id).stages) == 3  # type: ignore[union-attr]  # nothing saved

    exposure.fill("50")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").first).to_contain_text("Settings saved")
    with app.app_context():
        saved = db().get(Rollout, rollout_id)
        assert saved is not None
        assert [s["name"] for s in saved.stages] == ["10%", "50%", "100%"]
        assert [s["exposure_bp"] for s in saved.stages] == [1000, 5000, 10_000]
        assert saved.targeting["allow_list"] == [4, 8, 15]
        assert len(saved.targeting["protected_segments"]) == 1
        assert saved.freeze_windows == [
            {"repeat": "weekly", "start_time": "18:00", "hours": 62.0, "timezone": "Europe/Paris",
             "why": "weekend: nobody watches", "weekday": 4}
        ]  # fmt: skip
    page.get_by_role("link", name="Audit log").first.click()
    expect(page.locator("#audit-log")).to_contain_text("a 50% ring and a weekend freeze")
