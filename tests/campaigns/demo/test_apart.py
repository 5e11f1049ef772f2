"""The demo kept apart from real work: with `SMTP_URL` at a real (capture) server and real contacts
in the workspace while the story replays, the server receives nothing, no real contact gets a send, an
event or a consent record, the story's campaigns are finished and aimed at demo contacts only, a wave
on a demo campaign lands in the local outbox, and the demo goes in one step."""

from __future__ import annotations

import mailbox

import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from campaigns.audience.demo_scope import DEMO_SENDER
from campaigns.campaign_records import create_campaign
from campaigns.demo.remove import demo_present, remove_demo
from campaigns.demo.story import ROLLOUT_A, ROLLOUT_B, build_story
from campaigns.demo.workspace import DEMO_SEGMENT, build_demo
from campaigns.sending.planner import plan_wave
from campaigns.sending.send import send_batch
from models import AuditEntry, Campaign, ConsentRecord, Contact, Event, Rollout, Segment, Send, Template
from tests.conftest import SmtpSink

REAL = 40


def _real_contacts() -> list[int]:
    db().execute(
        sa.insert(Contact),
        [{"email": f"person{i}@example.com", "consent": True, "status": "active"} for i in range(REAL)],
    )
    db().commit()
    return list(db().scalars(sa.select(Contact.id).where(Contact.email.like("%@example.com"))))


def test_the_story_never_reaches_real_contacts_or_smtp_and_goes_in_one_step(
    app: Flask, smtp_sink: SmtpSink
) -> None:
    rt = app.extensions["mailramp"]
    with app.test_request_context():
        build_demo(db(), None, synthetic_contacts=1200)
        db().commit()
        real = _real_contacts()  # imported while the demo is there, before its waves are planned
        summary = build_story(db(), rt, audience=500)
        assert summary.built

        assert smtp_sink.messages == []
        assert db().scalar(sa.select(sa.func.count()).where(Send.contact_id.in_(real))) == 0
        assert db().scalar(sa.select(sa.func.count()).where(Event.contact_id.in_(real))) == 0
        assert db().scalar(sa.select(sa.func.count()).where(ConsentRecord.contact_id.in_(real))) == 0
        assert set(db().scalars(sa.select(Contact.status).where(Contact.id.in_(real)))) == {"active"}

        campaigns = list(db().scalars(sa.select(Campaign).where(Campaign.name.in_(summary.campaigns))))
        assert len(campaigns) == 5
        segment = db().scalar(sa.select(Segment.id).where(Segment.name == DEMO_SEGMENT))
        assert {c.status for c in campaigns} == {"sent"}, "each newsletter is finished, not paused"
        assert {c.segment_id for c in campaigns} == {segment}
        sale = next(c for c in campaigns if c.name.startswith("Flash sale"))
        assert sale.series == "Flash sale"
        assert db().scalar(sa.select(Rollout.series).where(Rollout.name == ROLLOUT_B)) == "Flash sale"

        # a campaign sent from the demo's domain, with no segment at all, still reaches only demo
        # contacts, and its messages go to the local outbox whatever SMTP_URL says
        template = db().scalar(sa.select(Template.id).limit(1))
        campaign = create_campaign(
            db(), {"name": "copy of the demo", "template_id": template, "from_email": DEMO_SENDER}, actor="t"
        )
        db().commit()
        wave, batches = plan_wave(db(), campaign.id, 30, rt.settings.batch_size)
        db().commit()
        for batch in batches:
            send_batch(rt, campaign.id, wave.id, batch.batch)
        assert smtp_sink.messages == []
        planned = set(db().scalars(sa.select(Send.contact_id).where(Send.campaign_id == campaign.id)))
        assert len(planned) == 30 and not planned & set(real)
        outbox = mailbox.Maildir(str(rt.settings.instance_path / "outbox"), create=False)
        assert len(outbox) == 30

        removal = remove_demo(db())
        db().commit()
        assert removal.rows["contacts"] == 1200
        assert not demo_present(db())
        assert db().scalar(sa.select(sa.func.count()).select_from(Contact)) == REAL
        assert db().scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
        assert db().scalar(sa.select(Rollout.id).where(Rollout.name == ROLLOUT_A)) is None
        assert db().scalar(sa.select(sa.func.count()).select_from(Send)) == 0
        assert db().scalar(sa.select(Segment.id).where(Segment.name == DEMO_SEGMENT)) is None
        assert db().scalar(sa.select(AuditEntry.summary).where(AuditEntry.object_type == "demo"))
        assert remove_demo(db()).total == 0  # twice is harmless
