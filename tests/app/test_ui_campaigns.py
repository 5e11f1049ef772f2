"""Campaign pages: the form creates a campaign with an AI rollout and a timezone, a wave is sent
through a real rq worker to the SMTP sink, and the results per arm and the report show it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy.orm import Session

from app.auth import create_user
from app.extensions import db
from campaigns.ops.queues import all_queues
from models import Campaign, Role, Rollout, Send
from tests.conftest import SmtpSink
from tests.factories import add_catalog, add_contacts, add_template

PASSWORD = "correct horse battery staple"


@pytest.fixture()
def marketer(app: Flask, client: FlaskClient) -> FlaskClient:
    with app.test_request_context():
        create_user("m@example.com", PASSWORD, Role.marketer)
        db().commit()
    client.post("/login", data={"email": "m@example.com", "password": PASSWORD})
    return client


def drain(app: Flask) -> None:
    runtime = app.extensions["mailramp"]
    every = all_queues(runtime)
    SimpleWorker(every, connection=runtime.redis).work(burst=True, with_scheduler=False)
    assert not [j for q in every for j in q.failed_job_registry.get_job_ids()]


def form(template_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Spring picks",
        "template_id": str(template_id),
        "segment_id": "",
        "from_email": "shop@example.com",
        "from_name": "Shop",
        "schedule_kind": "now",
        "timezone": "Europe/Paris",
        **extra,
    }


def test_bad_form_keeps_input_and_says_where(app: Flask, marketer: FlaskClient, session: Session) -> None:
    template = add_template(session)
    page = marketer.post("/campaigns/new", data=form(template.id, schedule_kind="at", send_at=""))
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "schedule.send_at: choose the date and time to send" in text
    assert 'value="Spring picks"' in text


def test_scheduled_at_a_wall_clock_time_in_a_timezone(
    app: Flask, marketer: FlaskClient, session: Session
) -> None:
    template = add_template(session)
    done = marketer.post(
        "/campaigns/new", data=form(template.id, schedule_kind="at", send_at="2030-06-01T09:00")
    )
    assert done.status_code == 302
    page = marketer.get(done.headers["Location"]).get_data(as_text=True)
    assert "2030-06-01 09:00 Europe/Paris" in page and "2030-06-01 07:00 UTC" in page


def test_create_with_ai_send_wave_and_see_results(
    app: Flask, marketer: FlaskClient, session: Session, smtp_sink: SmtpSink
) -> None:
    ids = add_contacts(session, 60)
    add_catalog(session, ids)
    template = add_template(session)
    done = marketer.post(
        "/campaigns/new",
        data=form(template.id, ai="on", exposure_percent="50", holdout_percent="10", manual_plan="on"),
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    detail_url = done.headers["Location"]
    with app.app_context():
        campaign = db().query(Campaign).one()
        rollout = db().get(Rollout, campaign.rollout_id)
        assert rollout is not None and rollout.holdout_bp == 1000 and rollout.plan == "manual"
        assert [s["exposure_bp"] for s in rollout.stages] == [5000]  # one stage, chosen explicitly
    # the campaign page's button asks first: how many, in which arms, to which segment, when
    unconfirmed = marketer.post(f"{detail_url}/waves", data={"limit": "40"})
    assert unconfirmed.status_code == 302 and "/waves/confirm?limit=40" in unconfirmed.headers["Location"]
    with app.app_context():
        assert db().query(Send).count() == 0  # nothing planned, nothing queued
    confirm = marketer.get(f"{detail_url}/waves/confirm?limit=40").get_data(as_text=True)
    assert "<strong data-wave-contacts>40</strong>" in confirm
    assert "AI (AI content)" in confirm and "control (control content)" in confirm
    assert "holdout (control content, never AI)" in confirm
    assert "everyone who can be sent to" in confirm and "Now: the batches are queued" in confirm
    assert "Send to 40 contacts now" in confirm
    arms = [int(n.replace(",", "")) for n in re.findall(r"<li>([\d,]+) ", confirm)]
    assert sum(arms) == 40
    with app.app_context():
        assert db().query(Send).count() == 0  # the confirmation page writes nothing
    bad = marketer.get(f"{detail_url}/waves/confirm?limit=zero", follow_redirects=True)
    assert "limit: not a whole number" in bad.get_data(as_text=True)
    sent = marketer.post(f"{detail_url}/waves", data={"limit": "40", "confirmed": "1"}, follow_redirects=True)
    assert "Wave 1 started: 40 contacts" in sent.get_data(as_text=True)
    assert marketer.get(f"{detail_url}/progress").get_json()["finished"] is False
    drain(app)
    progress = marketer.get(f"{detail_url}/progress").get_json()
    assert progress["finished"] is True and progress["done"] == 40
    assert len(smtp_sink.messages) == 40
    page = marketer.get(detail_url).get_data(as_text=True)
    assert "results-per-arm" in page and "campaign-funnel" in page
    assert "<strong>20</strong> contacts of the audience have not been sent to yet" in page
    with app.app_context():
        arms = {s.arm for s in db().query(Send).all()}
    assert "treatment" in arms and "control" in arms
    report = marketer.get(f"{detail_url}/report").get_data(as_text=True)
    assert "Campaign report: Spring picks" in report and "results-per-arm" in report
    assert marketer.get(f"/api/v1/campaigns/{campaign.id}/results.csv").status_code == 200


def test_recommendation_rules_from_the_form(app: Flask, marketer: FlaskClient, session: Session) -> None:
    template = add_template(session)
    bad = marketer.post("/campaigns/new", data=form(template.id, ai="on", min_price="30", max_price="10"))
    assert bad.status_code == 400
    assert "recommendation_rules.min_price: min_price is above max_price" in bad.get_data(as_text=True)
    done = marketer.post(
        "/campaigns/new",
        data=form(template.id, ai="on", categories="kitchen, garden", max_price="20", max_per_category="2"),
    )
    assert done.status_code == 302
    with app.app_context():
        rules = db().query(Campaign).one().recommendation_rules
    assert rules == {"categories": ["kitchen", "garden"], "max_price": 20.0, "max_per_category": 2}
    assert "categories: kitchen, garden" in marketer.get(done.headers["Location"]).get_data(as_text=True)


def test_the_form_refuses_a_from_name_that_would_add_a_header(
    app: Flask, marketer: FlaskClient, session: Session
) -> None:
    template = add_template(session)
    for bad in ("Shop\r\nBcc: someone@elsewhere.example", "Shop\nX-Injected: 1"):
        page = marketer.post("/campaigns/new", data=form(template.id, from_name=bad))
        assert page.status_code == 400
        assert "from_name: must not contain line breaks or control characters" in page.get_data(as_text=True)
    assert session.query(Campaign).count() == 0


def test_every_field_error_shows_at_once(app: Flask, marketer: FlaskClient, session: Session) -> None:
    """Three problems in one post: each at its own field, in one round (not one after the other)."""
    template = add_template(session)
    page = marketer.post(
        "/campaigns/new",
        data=form(template.id, name="", from_email="not an address", timezone="Mars/Olympus"),
    )
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "3 problems to fix: each is shown at its field." in text
    for field in ("f-name-error", "f-from_email-error", "f-timezone-error"):
        assert f'id="{field}"' in text, field
    assert "a name is required" in text and "unknown timezone" in text
    assert session.query(Campaign).count() == 0


def test_the_api_lists_every_problem_of_a_campaign(app: Flask, session: Session) -> None:
    from campaigns.campaign_records import create_campaign
    from campaigns.errors import InputError

    template = add_template(session)
    with pytest.raises(InputError) as refused:
        create_campaign(
            session,
            {"name": " ", "template_id": template.id, "from_email": "", "wave_size": 0},
            "tester",
        )
    assert [d["where"] for d in refused.value.details] == ["name", "wave_size", "from_email"]
