"""The demo shows a flow: two simulated weeks of buyers entering "Post-purchase cross-sell", its AI
step's rollout advancing stage by stage on the evaluator's decisions; demo contacts only, nothing
sent over SMTP, the flow paused at the end."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from campaigns.demo.flow_story import FLOW_NAME, ROLLOUT_F, build_flow_story
from campaigns.demo.workspace import build_demo
from campaigns.flows.report import flow_report
from models import Contact, Flow, Rollout, Send, Template
from tests.conftest import SmtpSink


def test_the_demo_flow_ramps_its_ai_step_as_buyers_enter(app: Flask, smtp_sink: SmtpSink) -> None:
    rt = app.extensions["mailramp"]
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=900)
        db().commit()
        real = Contact(email="person@example.com", consent=True, status="active")
        db().add(real)
        db().commit()
        template_id = db().scalar(sa.select(Template.id).order_by(Template.id).limit(1))
        assert template_id is not None
        story = build_flow_story(db(), rt, template_id, end=datetime.now(UTC), actor="demo story (simulated)")
        assert story.built and story.entered > 0 and story.sent > 0, story
        again = build_flow_story(db(), rt, template_id, end=datetime.now(UTC), actor="x")
        assert not again.built  # once only

        flow = db().scalar(sa.select(Flow).where(Flow.name == FLOW_NAME))
        assert flow is not None and flow.state == "paused"
        rollout = db().scalar(sa.select(Rollout).where(Rollout.name == ROLLOUT_F))
        assert rollout is not None and rollout.series == f"flow:{flow.id}:picks"
        outcomes = [d["decision"] for d in story.days]
        assert "advance" in outcomes and rollout.stage_index >= 1, outcomes  # stage by stage
        assert outcomes[0] == "hold"  # nothing matured on the first day
        assert smtp_sink.messages == []
        emails = set(
            db().scalars(
                sa.select(Contact.email)
                .join(Send, Send.contact_id == Contact.id)
                .where(Send.rollout_id == rollout.id)
            )
        )
        assert emails and all(e.endswith("@demo.mailramp.test") for e in emails)
        [step] = flow_report(db(), flow.id)["steps"]
        arms = {a["arm"]: a for a in step["arms"]}
        assert {"treatment", "control"} <= set(arms) and step["total"]["opens"] > 0
        assert (
            step["total"]["planned"] == story.sent
        )  # ledger rows written; a few were skipped (unsubscribed)
