"""Test sends of a campaign to a seed list, in both arms, outside the ledger."""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, jsonify
from pydantic import Field

from app.api.responses_people import SeedSends
from app.api.schema import ApiModel
from app.api.spec import route
from app.extensions import get_runtime
from campaigns.sending.seed_send import send_tests
from models import Role


class SeedSendIn(ApiModel):
    emails: list[str] = Field(min_length=1, max_length=50, description="seed addresses")
    include_suppressed: bool = Field(
        False,
        description="also mail seeds on the suppression list (or bounced, complained, unsubscribed):"
        " an explicit override, recorded in the audit log",
    )


@route(
    "/campaigns/<int:campaign_id>/test-sends",
    "POST",
    role=Role.marketer,
    summary="Send the campaign to seed addresses, once per arm; marked as tests, never counted",
    body=SeedSendIn,
    tag="campaigns",
    response=SeedSends,
)
def test_send(campaign_id: int, body: SeedSendIn) -> tuple[Response, int]:
    results = send_tests(get_runtime(), campaign_id, body.emails, include_suppressed=body.include_suppressed)
    return jsonify(results=[asdict(r) for r in results], sent=sum(r.accepted for r in results)), 200
