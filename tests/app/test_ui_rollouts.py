"""The rollout control panel: start, advance into an approval, an approver (not the requester)
applies it, the kill switch, decisions with evidence on the panel and the dashboard, the audit log."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from campaigns.rollout import changes
from campaigns.rollout.service import is_killed
from models import Approval, Decision, Role, Rollout, RolloutAudit
from tests.factories import add_matured_sends

PASSWORD = "correct horse battery staple"
PLAN = [
    {"name": "10%", "kind": "percent", "exposure_bp": 1000, "gates": {}},
    {"name": "50%", "kind": "percent", "exposure_bp": 5000, "gates": {}},
]


@pytest.fixture()
def rollout_id(app: Flask) -> int:
    with app.test_request_context():
        for role in Role:
            create_user(f"{role.value}@example.com", PASSWORD, role)
        rollout = changes.create_rollout(
            db(),
            "AI picks",
            "marketer@example.com",
            stages=PLAN,
            approval_from_bp=2500,
            holdout_bp=500,
            plan="manual",
        )
        db().commit()
        return int(rollout.id)


def login(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    assert (
        client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD}).status_code == 302
    )
    return client


def act(client: FlaskClient, rollout_id: int, action: str, reason: str = "because") -> str:
    response = client.post(
        f"/rollouts/{rollout_id}/act/{action}", data={"reason": reason}, follow_redirects=True
    )
    return response.get_data(as_text=True)


def test_start_advance_needs_an_approver_who_did_not_ask(app: Flask, rollout_id: int) -> None:
    marketer = login(app, "marketer")
    started = act(marketer, rollout_id, "start")
    assert re.search(
        r"The rollout is now ramping at stage \S+ \(1 of \d\), AI exposure now [\d.]+%", started
    ), started
    refused = act(marketer, rollout_id, "advance", "too early")
    assert "no recipient of this stage has matured yet" in refused
    with app.app_context():
        add_matured_sends(db(), rollout_id)
    page = act(marketer, rollout_id, "advance", "looks good")
    assert "an approver other than you must approve it" in page
    with app.app_context():
        approval = db().query(Approval).one()
        assert (approval.status, approval.requested_by) == ("pending", "marketer@example.com")
    assert "Approve and apply" not in marketer.get("/approvals").get_data(as_text=True)  # not an approver
    approver = login(app, "approver")
    queue = approver.get("/approvals").get_data(as_text=True)
    assert "Approve and apply" in queue and "looks good" in queue
    done = approver.post(
        f"/approvals/{approval.id}/approve", data={"reason": "numbers hold"}, follow_redirects=True
    )
    assert re.search(
        r"Approved and applied: the rollout is now ramping at stage \S+ \(2 of \d\)",
        done.get_data(as_text=True),
    )
    with app.app_context():
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None and rollout.stage_index == 1
        actions = [a.action for a in db().query(RolloutAudit).order_by(RolloutAudit.id)]
        assert actions == ["create", "start", "request_approval", "advance"]
    log = approver.get(f"/audit?rollout={rollout_id}").get_data(as_text=True)
    assert "approver@example.com" in log and "numbers hold" in log


def test_the_panel_shows_the_forecast_in_words(app: Flask, rollout_id: int) -> None:
    page = login(app, "viewer").get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    assert 'id="forecast-words"' in page and "this rollout can" in html.unescape(page)
    assert 'id="forecast-stages"' in page


def test_missing_reason_is_refused(app: Flask, rollout_id: int) -> None:
    page = act(login(app, "marketer"), rollout_id, "start", reason="")
    assert "reason: say why" in page


def test_kill_switch(app: Flask, rollout_id: int) -> None:
    marketer = login(app, "marketer")
    act(marketer, rollout_id, "start")
    page = act(marketer, rollout_id, "kill", "complaints spiking")
    assert "Kill switch on" in page
    with app.app_context():
        assert is_killed(db(), rollout_id)
    assert 'id="kill-switch"' not in marketer.get(f"/rollouts/{rollout_id}").get_data(as_text=True)


def test_viewer_sees_the_panel_but_cannot_act(app: Flask, rollout_id: int) -> None:
    viewer = login(app, "viewer")
    page = viewer.get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    assert "AI picks" in page and "<form" in page  # only the logout form
    assert page.count("<form") == 1
    assert viewer.post(f"/rollouts/{rollout_id}/act/kill", data={"reason": "x"}).status_code == 403
    with app.app_context():
        assert not is_killed(db(), rollout_id)


def evidence(lift: float) -> dict[str, Any]:
    return {
        "primary": {"metric": "conversion_rate", "status": "ok", "lift": lift, "lift_low": lift - 0.05,
                    "lift_high": lift + 0.05, "mean_treatment": 0.031, "mean_control": 0.025,
                    "n_treatment": 1200, "n_control": 4800},
        "guardrails": {"unsubscribe_rate": {"status": "ok"}},
        "health": ["guardrail:unsubscribe_rate"],
        "srm": {"mismatch": False, "p_value": 0.42},
    }  # fmt: skip


def test_decisions_on_panel_dashboard_and_report(app: Flask, rollout_id: int) -> None:
    marketer = login(app, "marketer")
    act(marketer, rollout_id, "start")
    with app.app_context():
        for i, lift in enumerate((0.12, 0.24)):
            db().add(Decision(rollout_id=rollout_id, at=datetime(2026, 11, 20 + i, tzinfo=UTC), stage_index=0,
                              outcome="hold", reasons=[f"gates not met {i}"], evidence=evidence(lift)))  # fmt: skip
        db().commit()
    panel = marketer.get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    assert "primary-lift-chart" in panel and "exposure-chart" in panel
    assert "+24.0%" in panel and "[+19.0%, +29.0%]" in panel and "gates not met 1" in panel
    dashboard = marketer.get("/").get_data(as_text=True)
    assert "+24.0%" in dashboard and "guardrail:unsubscribe_rate" in dashboard and "better" in dashboard
    report = marketer.get(f"/rollouts/{rollout_id}/report").get_data(as_text=True)
    assert "Rollout report: AI picks" in report and "report-primary-lift" in report


def test_create_rollout_and_edit_settings_with_errors_named(app: Flask, rollout_id: int) -> None:
    marketer = login(app, "marketer")
    bad = marketer.post(
        "/rollouts/new", data={"name": "Series", "mode": "json", "stages": '[{"name": "x", "kind": "nope"}]'}
    )
    assert bad.status_code == 400 and "stages[0]" in bad.get_data(as_text=True)
    good = marketer.post(
        "/rollouts/new",
        data={"name": "Series", "holdout_percent": "5", "primary_metric": "click_rate", "mode": "json"},
    )
    assert good.status_code == 302
    edit = marketer.post(
        f"/rollouts/{rollout_id}/settings",
        data={"name": "AI picks v2", "reason": "rename", "approval_from_percent": "25", "mode": "json"},
        follow_redirects=True,
    )
    assert "Settings saved" in edit.get_data(as_text=True)
    with app.app_context():
        assert db().get(Rollout, rollout_id).name == "AI picks v2"  # type: ignore[union-attr]


def test_shadow_stage_report_on_the_panel(app: Flask, rollout_id: int) -> None:
    from models import Campaign, Contact, Send, ShadowRender, Template

    with app.app_context():
        contact = Contact(email="s@example.com")
        template = Template(name="t", subject="s", control_html="c")
        db().add_all([contact, template])
        db().flush()
        campaign = Campaign(
            name="c", template_id=template.id, from_email="f@example.com", rollout_id=rollout_id
        )
        db().add(campaign)
        db().flush()
        send = Send(campaign_id=campaign.id, contact_id=contact.id, rollout_id=rollout_id, stage_index=0,
                    state="sent", render_ms=1.5)  # fmt: skip
        db().add(send)
        db().flush()
        db().add(ShadowRender(send_id=send.id, rollout_id=rollout_id, item_ids=[1, 2], latency_ms=12.0))
        db().commit()
    page = login(app, "viewer").get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    assert 'id="shadow-report"' in page and "12.0 / 12.0" in page and "1.5 / 1.5" in page


def test_arm_interval_is_the_engines_confidence_sequence() -> None:
    from app.ui.charts import arm_interval
    from campaigns.stats import cs_halfwidth, mixture_rho

    lo, hi = arm_interval(0.1, 1000, 0.05, 20_000)
    half = float(cs_halfwidth(0.1 * 0.9 / 1000, 1000, 0.05, mixture_rho(0.05, 20_000)))
    assert lo == pytest.approx(0.1 - half) and hi == pytest.approx(0.1 + half)
    assert 0.02 < half < 0.06  # wider than a fixed-n 95% interval (0.019), as an always-valid one is
    assert arm_interval(0.5, 0, 0.05, 20_000) == (None, None)
    assert arm_interval(0.001, 50, 0.05, 20_000)[0] == 0.0  # clipped at zero


def stage_fields(*stages: tuple[str, str, str, str]) -> list[tuple[str, str]]:
    """(key, kind, name, exposure %) rows as the settings form posts them, in order."""
    out = []
    for key, kind, name, exposure in stages:
        out += [("stage_key", key), (f"stage-{key}-kind", kind), (f"stage-{key}-name", name),
                (f"stage-{key}-exposure", exposure), (f"stage-{key}-min_recipients", "100"),
                (f"stage-{key}-min_events", "5"), (f"stage-{key}-min_hours", "0")]  # fmt: skip
    return out


def test_settings_form_saves_every_part_and_errors_land_at_their_field(app: Flask, rollout_id: int) -> None:
    from werkzeug.datastructures import MultiDict

    from models import Segment

    with app.app_context():
        vip = Segment(name="VIP", rules={"field": "country", "op": "eq", "value": "France"})
        db().add(vip)
        db().commit()
        vip_id = vip.id
    marketer = login(app, "marketer")
    assert "Stage plan" in marketer.get(f"/rollouts/{rollout_id}/settings").get_data(as_text=True)
    base = [("name", "AI picks"), ("primary_metric", "click_rate"), ("holdout_percent", "5"),
            ("decision_mode", "auto"), ("approval_from_percent", "25"), ("reason", "form edit"),
            ("protected_segments", str(vip_id)), ("allow_list", "4, 8"), ("beta_attribute", "beta"),
            ("guard-unsubscribe_rate-enabled", "on"), ("guard-unsubscribe_rate-cap", "0.5"),
            ("guard-complaint_rate-enabled", "on"), ("policy-min_samples_per_arm", "50"),
            ("policy-advance_when", "better"), ("report_segments", str(vip_id)),
            ("freeze_key", "0"), ("freeze-0-repeat", "weekly"), ("freeze-0-weekday", "4"),
            ("freeze-0-start_time", "18:00"), ("freeze-0-hours", "62"), ("freeze-0-timezone", "Europe/Paris"),
            ("freeze-0-why", "weekend")]  # fmt: skip
    # reordered rows (the 50% row posted before the 10% one): exposure would go down, so the error
    # is shown at the second row's exposure field and nothing is saved
    wrong = MultiDict(base + stage_fields(("7", "percent", "half", "50"), ("3", "percent", "tenth", "10")))
    page = marketer.post(f"/rollouts/{rollout_id}/settings", data=wrong)
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert 'id="stage-3-exposure-error"' in html and "exposure must not decrease" in html
    assert 'id="stage-3-exposure" name="stage-3-exposure" value="10"' in html  # what was typed stays
    not_number = MultiDict(base + stage_fields(("1", "percent", "tenth", "ten")))
    html = marketer.post(f"/rollouts/{rollout_id}/settings", data=not_number).get_data(as_text=True)
    assert "&#39;ten&#39; is not a number" in html and 'id="stage-1-exposure-error"' in html

    right = MultiDict(base + stage_fields(("3", "percent", "tenth", "10"), ("7", "percent", "half", "50")))
    saved = marketer.post(f"/rollouts/{rollout_id}/settings", data=right, follow_redirects=True)
    assert "Settings saved" in saved.get_data(as_text=True)
    with app.app_context():
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None
        assert [(s["name"], s["exposure_bp"]) for s in rollout.stages] == [("tenth", 1000), ("half", 5000)]
        assert rollout.stages[0]["gates"]["min_recipients_per_arm"] == 100
        assert rollout.targeting["protected_segments"] == [vip_id]
        assert rollout.targeting["allow_list"] == [4, 8]
        assert rollout.targeting["beta"] == {"attribute": "beta", "op": "eq", "value": True}
        assert rollout.guardrails["unsubscribe_rate"] == {"cap": 0.005}
        assert rollout.guardrails["bounce_rate"] == {"enabled": False}
        assert rollout.guardrails["policy"]["min_samples_per_arm"] == 50
        assert rollout.freeze_windows[0]["repeat"] == "weekly"
        assert rollout.report_segments == [vip_id]
        assert rollout.primary_metric == "click_rate"


def test_a_new_rollout_from_the_form(app: Flask, rollout_id: int) -> None:
    from werkzeug.datastructures import MultiDict

    marketer = login(app, "marketer")
    basics = [("name", "Autumn picks"), ("primary_metric", "conversion_rate"), ("holdout_percent", "10"),
              ("decision_mode", "auto"), ("approval_from_percent", ""), ("policy-advance_when", "not_worse"),
              ("guard-unsubscribe_rate-enabled", "on"), ("guard-complaint_rate-enabled", "on"),
              ("guard-bounce_rate-enabled", "on"), ("guard-send_error_rate-enabled", "on"),
              ("guard-render_p95_ms-enabled", "on"), ("guard-render_p95_ms-cap", "800")]  # fmt: skip
    form = MultiDict([*basics, *stage_fields(("0", "internal", "staff", "0"), ("1", "percent", "5%", "5"))])
    created = marketer.post("/rollouts/new", data=form)
    assert created.status_code == 302
    with app.app_context():
        rollout = db().scalar(sa.select(Rollout).where(Rollout.name == "Autumn picks"))
        assert rollout is not None and rollout.state == "draft" and rollout.holdout_bp == 1000
        assert [s["kind"] for s in rollout.stages] == ["internal", "percent"]
        assert rollout.guardrails["render_p95_ms"] == {"cap": 800.0}
        assert rollout.approval_from_bp is None
    empty = marketer.post("/rollouts/new", data=MultiDict([("name", "No stages")]))
    assert empty.status_code == 400 and "a plan needs at least one stage" in empty.get_data(as_text=True)


def test_manual_plan_maturation_and_segment_buttons_on_the_control_panel(app: Flask, rollout_id: int) -> None:
    from models import Segment

    with app.app_context():
        france = Segment(name="France", rules={"field": "country", "op": "eq", "value": "France"})
        db().add(france)
        db().flush()
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None
        rollout.report_segments = [france.id]
        db().commit()
        segment_id = int(france.id)
    marketer = login(app, "marketer")
    act(marketer, rollout_id, "start")
    with app.app_context():
        add_matured_sends(db(), rollout_id)
    page = marketer.get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    assert 'id="manual-plan"' in page and "manual plan" in page
    assert 'id="stage-matures"' in page and "matured" in page and "72 h after their send" in page
    assert f'id="segment-{segment_id}-exclude"' in page
    done = marketer.post(
        f"/rollouts/{rollout_id}/segments/{segment_id}/exclude",
        data={"reason": "harmed"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Segment {segment_id} excluded" in done and f'id="segment-{segment_id}-include"' in done
    rolled = act(marketer, rollout_id, "rollback", "stop")
    # the flash says it as the page does: "rolled back", the stage by its name, the exposure now
    assert re.search(
        r"The rollout is now rolled back at stage \S+ \(1 of \d\), AI exposure now 0%", rolled
    ), rolled
    assert "rolled_back" not in rolled.split('role="status"')[1][:300]
    again = marketer.post(
        f"/rollouts/{rollout_id}/segments/{segment_id}/include",
        data={"reason": "fixed"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Segment {segment_id} included" in again  # works in a terminal state too
    with app.app_context():
        actions = [a.action for a in db().query(RolloutAudit).filter_by(rollout_id=rollout_id)]
        assert actions[-3:] == ["exclude_segment", "rollback", "include_segment"]
    viewer = login(app, "viewer")
    assert viewer.post(
        f"/rollouts/{rollout_id}/segments/{segment_id}/exclude", data={"reason": "x"}
    ).status_code in (302, 403)


def _stage_rows(*rows: tuple[str, str, str, str, str]) -> dict[str, list[str]]:
    """The default plan's form as posted: one row per stage (name, exposure %, recipients, events, hours)."""
    data: dict[str, list[str]] = {"stage_key": []}
    for i, (name, exposure, recipients, events, hours) in enumerate(rows):
        data["stage_key"].append(str(i))
        for key, value in (("name", name), ("kind", "percent"), ("exposure", exposure),
                           ("min_recipients", recipients), ("min_events", events), ("min_hours", hours)):  # fmt: skip
            data[f"stage-{i}-{key}"] = [value]
    return data


def test_default_plan_settings_page(app: Flask, rollout_id: int) -> None:
    admin, marketer = login(app, "admin"), login(app, "marketer")
    page = html.unescape(marketer.get("/settings/rollout-plan").get_data(as_text=True))
    # the same stage rows as a rollout's plan, not a JSON textarea; read-only for a marketer
    assert "Default rollout plan" in page and 'id="stage-rows"' in page and "<textarea" not in page
    assert 'name="stage-5-exposure" value="100"' in page and "<fieldset disabled>" in page
    assert marketer.post("/settings/rollout-plan", data=_stage_rows()).status_code == 403
    # every field's error at once, each at its field
    bad = admin.post(
        "/settings/rollout-plan",
        data={**_stage_rows(("3%", "abc", "900", "10", "24"), ("30%", "30", "-5", "10", "24")),
              "holdout_percent": "lots"},
    )  # fmt: skip
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "3 problems to fix" in text
    assert 'id="stage-0-exposure-error"' in text and 'id="stage-1-min_recipients-error"' in text
    assert 'id="f-holdout_percent-error"' in text and 'value="abc"' in text  # what was typed stays
    one_stage = admin.post(
        "/settings/rollout-plan", data={**_stage_rows(("1%", "1", "0", "0", "0")), "holdout_percent": "5"}
    )
    assert one_stage.status_code == 400 and "not a staged plan" in one_stage.get_data(as_text=True)
    saved = admin.post(
        "/settings/rollout-plan",
        data={
            **_stage_rows(("3%", "3", "900", "10", "24"), ("30%", "30", "900", "10", "24")),
            "holdout_percent": "8",
        },
        follow_redirects=True,
    )
    assert "Default plan saved" in saved.get_data(as_text=True)
    new_form = html.unescape(marketer.get("/rollouts/new").get_data(as_text=True))
    assert '"exposure_bp": 300' in new_form
