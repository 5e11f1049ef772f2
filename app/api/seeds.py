"""Test sends of a campaign to a seed list, in both arms, outside the ledger."""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, jsonify

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import get_runtime
from campaigns.errors import InputError
from campaigns.sending.seed_send import send_tests
from models import Role

TEST_SEND_BODY = {
    "type": "object",
    "properties": {"emails": {"type": "array", "items": {"type": "string"}, "maxItems": 50}},
    "required": ["emails"],
}


@route(
    "/campaigns/<int:campaign_id>/test-sends",
    "POST",
    role=Role.marketer,
    summary="Send the campaign to seed addresses, once per arm; marked as tests, never counted",
    body=TEST_SEND_BODY,
    tag="campaigns",
)
def test_send(campaign_id: int) -> tuple[Response, int]:
    body = json_body()
    emails = body.get("emails")
    if not isinstance(emails, list):
        raise InputError("a list of email addresses is required", where="emails")
    results = send_tests(get_runtime(), campaign_id, emails)
    return jsonify(results=[asdict(r) for r in results], sent=sum(r.accepted for r in results)), 200
