"""Shared by the AI-step tests: a flow whose one send step has AI content, contacts entering it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.flows.triggers import record_event
from campaigns.rollout import changes
from campaigns.rollout.flow_rate import step_series
from campaigns.rollout.machine import transition
from models import Campaign, FlowStepCampaign, Send, simulated_now
from tests.campaigns.flows.helpers import Clock, send_step
from tests.conftest import ApiClient

EVENT = "added_to_cart"


def ai_flow(session: Session, api: ApiClient, name: str = "Cart", **step: Any) -> dict[str, Any]:
    """A draft flow: an `added_to_cart` event, then one AI send step `picks`."""
    from tests.campaigns.flows.helpers import make_flow

    definition = {
        "trigger": {"kind": "event", "name": EVENT},
        "steps": [{**send_step(session, "picks", "Picks for you"), "ai_content": True, **step}],
    }
    return make_flow(api, name, definition, activate=False)


def step_rollout_first(
    session: Session, flow_id: int, stages: list[dict[str, Any]], holdout_bp: int = 1000, **settings: Any
) -> int:
    """A rollout made beforehand for the step's series (the flow then uses it), started."""
    rollout = changes.create_rollout(
        session, f"AI picks {flow_id}", "test@example.com", series=step_series(flow_id, "picks"),
        stages=stages, holdout_bp=holdout_bp, plan="manual", **settings,
    )  # fmt: skip
    transition(session, rollout, "start", "test@example.com", "test")
    session.commit()
    return int(rollout.id)


def enter(session: Session, clock: Clock, contact_ids: list[int]) -> None:
    with simulated_now(clock.now):
        for contact_id in contact_ids:
            record_event(session, contact_id, EVENT)
        session.commit()


def step_sends(session: Session, flow_id: int) -> list[Send]:
    session.expire_all()
    return list(
        session.scalars(
            sa.select(Send)
            .join(FlowStepCampaign, FlowStepCampaign.campaign_id == Send.campaign_id)
            .where(FlowStepCampaign.flow_id == flow_id)
            .order_by(Send.id)
        )
    )


def step_campaigns(session: Session, flow_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            sa.select(Campaign)
            .join(FlowStepCampaign, FlowStepCampaign.campaign_id == Campaign.id)
            .where(FlowStepCampaign.flow_id == flow_id)
        )
    )
