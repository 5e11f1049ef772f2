"""The rollout control panel: start, advance into an approval, an approver (not the requester)
applies it, the kill switch, decisions with evidence on the panel and the dashboard, the audit log."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import pytest
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
    assert "The rollout is now ramping, stage 0" in act(marketer, rollout_id, "start")
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
    assert "Approved and applied: the rollout is now ramping, stage 1" in done.get_data(as_text=True)
    with app.app_context():
        rollout = db().get(Rollout, rollout_id)
        assert rollout is not None and rollout.stage_index == 1
        actions = [a.action for a in db().query(RolloutAudit).order_by(RolloutAudit.id)]
        assert actions == ["create", "start", "request_approval", "advance"]
    log = approver.get(f"/audit?rollout={rollout_id}").get_data(as_text=True)
    assert "approver@example.com" in log and "numbers hold" in log


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
    bad = marketer.post("/rollouts/new", data={"name": "Series", "stages": '[{"name": "x", "kind": "nope"}]'})
    assert bad.status_code == 400 and "stages[0]" in bad.get_data(as_text=True)
    good = marketer.post(
        "/rollouts/new", data={"name": "Series", "holdout_percent": "5", "primary_metric": "click_rate"}
    )
    assert good.status_code == 302
    edit = marketer.post(
        f"/rollouts/{rollout_id}/settings",
        data={"name": "AI picks v2", "reason": "rename", "approval_from_percent": "25"},
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
    act(marketer, rollout_id, "rollback", "stop")
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


def test_default_plan_settings_page(app: Flask, rollout_id: int) -> None:
    admin, marketer = login(app, "admin"), login(app, "marketer")
    page = html.unescape(marketer.get("/settings/rollout-plan").get_data(as_text=True))
    assert "Default rollout plan" in page and '"exposure_bp": 100,' in page and "readonly" in page
    assert (
        marketer.post("/settings/rollout-plan", data={"stages": "[]", "holdout_percent": "5"}).status_code
        == 403
    )
    bad = admin.post("/settings/rollout-plan", data={"stages": '[{"kind": "percent", "exposure_bp": 100}]',
                                                     "holdout_percent": "5"})  # fmt: skip
    assert bad.status_code == 400 and "not a staged plan" in bad.get_data(as_text=True)
    plan = '[{"kind": "percent", "exposure_bp": 300, "gates": {"min_recipients_per_arm": 900}}, {"kind": "percent", "exposure_bp": 3000, "gates": {"min_recipients_per_arm": 900}}]'
    saved = admin.post(
        "/settings/rollout-plan", data={"stages": plan, "holdout_percent": "8"}, follow_redirects=True
    )
    assert "Default plan saved" in saved.get_data(as_text=True)
    new_form = html.unescape(marketer.get("/rollouts/new").get_data(as_text=True))
    assert '"exposure_bp": 300' in new_form
