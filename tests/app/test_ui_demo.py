"""The demo in the UI: a notice on the dashboard while its story replays, its removal in one step
(admins only, audited), the calendar opening on the month that has sends, and a completed rollout
that keeps its kill switch and roll back out of the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from campaigns.demo.workspace import build_demo
from campaigns.jobs import DEMO_STORY_JOB
from campaigns.ops import queues
from campaigns.rollout import changes
from models import AuditEntry, Campaign, Contact, Role, Rollout, Template, Wave

PASSWORD = "correct horse battery staple"


def _users(app: Flask) -> None:
    with app.test_request_context():
        for role in Role:
            create_user(f"{role.value}@example.com", PASSWORD, role)
        db().commit()


def login(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    assert (
        client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD}).status_code == 302
    )
    return client


def test_the_dashboard_says_the_story_replays_and_admins_remove_the_demo(app: Flask) -> None:
    _users(app)
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=200)
        db().add(Contact(email="someone@example.com", consent=True, status="active"))
        db().commit()
    admin, marketer = login(app, "admin"), login(app, "marketer")
    page = admin.get("/").get_data(as_text=True)
    assert "Remove the demo" in page and 'id="demo-replaying"' not in page
    assert "Remove the demo" not in marketer.get("/").get_data(as_text=True)

    rt = app.extensions["mailramp"]
    queues.queue(rt, queues.TRAINING).enqueue("os.getpid", job_id=DEMO_STORY_JOB)  # waiting for its worker
    assert 'id="demo-replaying"' in marketer.get("/").get_data(as_text=True)

    assert marketer.post("/demo/remove").status_code == 403
    done = admin.post("/demo/remove", follow_redirects=True).get_data(as_text=True)
    assert "The demo is removed" in done
    with app.test_request_context():
        emails = list(db().scalars(sa.select(Contact.email)))
        assert emails == ["someone@example.com"]
        entry = db().scalar(sa.select(AuditEntry).where(AuditEntry.object_type == "demo"))
        assert entry is not None and entry.actor == "admin@example.com"
    page = admin.get("/").get_data(as_text=True)
    assert "Remove the demo" not in page and 'id="demo-replaying"' not in page


def test_the_calendar_opens_on_the_month_that_has_sends(app: Flask) -> None:
    _users(app)
    long_ago = datetime.now(UTC).replace(day=1) - timedelta(days=40)
    with app.test_request_context():
        template = Template(name="t", subject="s", layout_html="{{ content }}", control_html="c", ai_html="a")
        db().add(template)
        db().flush()
        campaign = Campaign(
            name="Old newsletter", template_id=template.id, from_email="a@example.com", status="sent"
        )
        db().add(campaign)
        db().flush()
        db().add(Wave(campaign_id=campaign.id, number=1, status="done", started_at=long_ago))
        db().commit()
    page = login(app, "viewer").get("/calendar").get_data(as_text=True)
    assert long_ago.strftime("%B %Y") in page and "Old newsletter" in page


def test_a_completed_rollout_keeps_kill_and_roll_back_out_of_the_way(app: Flask) -> None:
    _users(app)
    with app.test_request_context():
        rollout = changes.create_rollout(db(), "Done", "marketer@example.com", plan="manual")
        rollout.state = "completed"
        db().commit()
        rollout_id = rollout.id
    page = login(app, "marketer").get(f"/rollouts/{rollout_id}").get_data(as_text=True)
    details = page.index('<details id="after-completion">')
    assert page.index('id="kill-switch"') > details
    assert page.index("Roll back") > details
    with app.test_request_context():
        assert db().get(Rollout, rollout_id) is not None


def test_run_prints_the_demo_login_only_while_the_demo_exists(app: Flask) -> None:
    from app.auth import hash_password
    from app.supervisor import DEMO_EMAIL, DEMO_PASSWORD, login_line
    from campaigns.demo.remove import remove_demo
    from models import User

    with app.test_request_context():
        create_user(DEMO_EMAIL, DEMO_PASSWORD, Role.admin)
        db().commit()
        assert (
            login_line(db())
            == f"  login: {DEMO_EMAIL} / {DEMO_PASSWORD} (the demo is removed: change this password)"
        )
        build_demo(db(), None, synthetic_contacts=100)
        db().commit()
        assert login_line(db()) == f"  demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"
        remove_demo(db())
        user = db().scalar(sa.select(User).where(User.email == DEMO_EMAIL))
        assert user is not None
        user.password_hash = hash_password("something else entirely")
        db().commit()
        assert login_line(db()) == ""


def test_a_sent_campaign_offers_no_wave(app: Flask) -> None:
    _users(app)
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=100)
        template = db().scalar(sa.select(Template.id).limit(1))
        campaign = Campaign(name="Done", template_id=template, from_email="a@example.com", status="sent")
        db().add(campaign)
        db().commit()
        campaign_id = campaign.id
    page = login(app, "marketer").get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'id="campaign-finished"' in page and "Send wave" not in page
