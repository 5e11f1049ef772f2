"""One bad record fails alone: a contact whose address cannot be sent to, or whose message cannot be
rendered or built, is `failed` with its reason; every other contact of the wave is sent once, through
the real send path (planner, rq worker, SMTP sink), and no job fails."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from app.auth import create_user
from app.extensions import db
from campaigns.jobs import start_wave
from campaigns.ops.queues import all_queues
from campaigns.reports.results import campaign_progress
from campaigns.runtime import Runtime
from campaigns.sending.message import MessageBuilder
from models import Contact, Role, Send, Wave
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_catalog, add_contacts, add_template

# Stored before addresses were checked at the door (or written around it): each must fail alone.
PASSWORD = "correct horse battery staple"
POISON = ["ünï@example.com", "a\u200b@example.com", "two..dots@example.com"]


@pytest.fixture()
def rt(app: Any) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    return runtime


def drain(rt: Runtime) -> int:
    """Run every queued job; returns how many jobs failed."""
    queues = all_queues(rt)
    SimpleWorker(queues, connection=rt.redis).work(burst=True)
    return sum(FailedJobRegistry(queue=q).count for q in queues)


def _add_poison(session: Session) -> None:
    session.execute(
        sa.insert(Contact), [{"email": e, "name": "Poison", "country": "United Kingdom"} for e in POISON]
    )
    session.commit()


def _by_email(session: Session, campaign_id: int) -> dict[str, tuple[str, str]]:
    rows = session.execute(
        sa.select(Contact.email, Send.state, Send.error)
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.campaign_id == campaign_id)
    ).all()
    return {email: (state, error) for email, state, error in rows}


def test_a_wave_with_one_percent_invalid_addresses_sends_every_valid_contact_once(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    valid = add_contacts(session, 300)
    _add_poison(session)  # 3 of 303: 1%
    add_catalog(session, valid)
    campaign = add_campaign(
        session,
        add_template(session).id,
        ai={"exposure_percent": 50, "holdout_percent": 10, "plan": "manual"},
    )
    wave = start_wave(rt, campaign.id, limit=None)
    assert wave["planned"] == 303
    assert drain(rt) == 0  # no job failed, none is left to retry
    session.expire_all()
    rows = _by_email(session, campaign.id)
    assert Counter(state for state, _ in rows.values()) == {"sent": 300, "failed": 3}
    received = Counter(rcpts[0] for _, rcpts in smtp_sink.envelopes)
    assert set(received) == {f"person{i}@example.com" for i in range(300)}
    assert set(received.values()) == {1}
    for email in POISON:
        state, error = rows[email]
        assert state == "failed"
        assert error.startswith("not sent: address refused"), error
    assert "non-ASCII" in rows["ünï@example.com"][1]
    assert "two periods" in rows["two..dots@example.com"][1]
    finished = session.get(Wave, wave["wave_id"])
    assert finished is not None and finished.status not in ("planning", "sending")
    progress = campaign_progress(session, campaign.id)
    assert progress["delivery"]["failed"] == 3 and progress["delivery"]["throttled"] == 0
    assert [(f["reason"], f["count"]) for f in progress["failures"]] == [("not sent: address refused", 3)]


def test_the_progress_view_names_the_failure_not_throttled(
    rt: Runtime, session: Session, smtp_sink: SmtpSink, app: Any
) -> None:
    add_contacts(session, 10)
    _add_poison(session)
    campaign = add_campaign(session, add_template(session).id)
    start_wave(rt, campaign.id, limit=None)
    assert drain(rt) == 0
    with app.test_request_context():
        create_user("viewer-ui@example.com", PASSWORD, Role.viewer)
        db().commit()
    client = app.test_client()
    assert (
        client.post("/login", data={"email": "viewer-ui@example.com", "password": PASSWORD}).status_code
        == 302
    )
    progress = client.get(f"/campaigns/{campaign.id}/progress").get_json()
    text = progress["text"]
    assert text.startswith("13 of 13 processed, 3 failed (3 not sent: address refused, e.g. not sent: "), text
    assert "throttled" not in text and text.endswith(": done")


def test_a_message_that_cannot_be_rendered_or_built_fails_alone(
    rt: Runtime, session: Session, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contacts(session, 20)
    add_contacts(session, 1, start=100, attributes={"per": 0})  # 10 // 0 for this one only
    add_contacts(session, 1, start=200)
    template = add_template(session, control_html="<p>{{ 10 // contact.attributes.get('per', 1) }}</p>")
    campaign = add_campaign(session, template.id)
    build = MessageBuilder.build

    def build_or_fail(self: MessageBuilder, **kwargs: Any) -> Any:
        if kwargs["email"] == "person200@example.com":
            raise UnicodeEncodeError("ascii", "x", 0, 1, "a header that cannot be encoded")
        return build(self, **kwargs)

    monkeypatch.setattr(MessageBuilder, "build", build_or_fail)
    start_wave(rt, campaign.id, limit=None)
    assert drain(rt) == 0
    session.expire_all()
    rows = _by_email(session, campaign.id)
    assert Counter(state for state, _ in rows.values()) == {"sent": 20, "failed": 2}
    assert rows["person100@example.com"][0] == "failed"
    assert "the template fails for this contact: ZeroDivisionError" in rows["person100@example.com"][1]
    assert rows["person200@example.com"][0] == "failed"
    assert "the message cannot be built: UnicodeEncodeError" in rows["person200@example.com"][1]
    assert len(smtp_sink.envelopes) == 20
