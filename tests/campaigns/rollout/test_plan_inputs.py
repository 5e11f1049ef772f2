"""What the planner reads from the workspace: sendable size, cadence, baselines, learned windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from campaigns.decisions.learned import with_learned_windows
from campaigns.decisions.policy import parse_config
from campaigns.rollout.changes import create_rollout
from campaigns.rollout.plan_inputs import baselines, cadence_of, learned_windows
from models import Event, Send
from tests.factories import add_campaign, add_contacts, add_template


def test_sendable_size_cadence_and_stated_baselines(session: Session) -> None:
    add_contacts(session, 30)
    add_contacts(session, 5, start=100, status="unsubscribed")
    template = add_template(session)
    weekly = add_campaign(session, template.id, schedule={"kind": "recurring", "cron": "0 9 * * 1"})
    cadence = cadence_of(session, weekly)
    assert (cadence.kind, cadence.per_send, cadence.interval_hours) == ("recurring", 30, 168.0)
    waves = add_campaign(session, template.id, name="In waves", wave_size=10)
    assert (cadence_of(session, waves).kind, cadence_of(session, waves).sends) == ("one-off", 3)
    assert cadence_of(session, None).kind == "series"
    rates, source = baselines(session)
    assert source.startswith("stated defaults") and rates["conversion_rate"] == 0.02


def test_windows_are_learned_from_the_workspace_delays(session: Session) -> None:
    contacts = add_contacts(session, 300)
    campaign = add_campaign(session, add_template(session).id)
    now = datetime.now(UTC)
    sent_at = now - timedelta(days=5)
    sends = [Send(campaign_id=campaign.id, contact_id=c, state="sent", sent_at=sent_at) for c in contacts]
    session.add_all(sends)
    session.flush()
    # conversions arrive within 0..9 hours of the send: 95% by about 9 h
    session.add_all(
        Event(dedupe_key=f"k{i}", kind="conversion", send_id=s.id, occurred_at=sent_at + timedelta(hours=i % 10))
        for i, s in enumerate(sends)
    )  # fmt: skip
    session.commit()
    learned = learned_windows(session, now, kinds=("conversion", "click"))
    assert "click" not in learned  # too few events: the fixed window stays
    assert learned["conversion"]["window"] == 9.0 and learned["conversion"]["events"] == 300
    # the evaluator uses it for the primary metric, unless the rollout sets its own window
    rollout = create_rollout(session, "r", "owner@example.com")
    config = with_learned_windows(session, parse_config("conversion_rate", {}), rollout, now)
    assert config.policy.window("conversion") == 9.0 and config.policy.window("unsubscribe") == 72.0
    rollout.guardrails = {"policy": {"maturation_hours": {"conversion": 48}}}
    own = parse_config("conversion_rate", rollout.guardrails)
    assert with_learned_windows(session, own, rollout, now).policy.window("conversion") == 48.0
