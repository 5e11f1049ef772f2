"""Waves delivered at each contact's local time."""

from __future__ import annotations

from flask import Response, jsonify

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import get_runtime
from campaigns.errors import InputError
from campaigns.jobs import start_wave
from models import Role

LOCAL_WAVE_BODY = {
    "type": "object",
    "properties": {
        "limit": {
            "type": ["integer", "null"],
            "description": "contacts in this wave; all that remain when omitted",
        },
        "local_hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "default_timezone": {
            "type": "string",
            "description": "for contacts without a known time zone; UTC when omitted",
        },
    },
    "required": ["local_hour"],
}


@route(
    "/campaigns/<int:campaign_id>/waves/local-time",
    "POST",
    role=Role.marketer,
    summary="Send a wave so each contact receives it at the given hour of their own time zone",
    body=LOCAL_WAVE_BODY,
    tag="campaigns",
)
def send_local_time_wave(campaign_id: int) -> tuple[Response, int]:
    body = json_body()
    limit, hour = body.get("limit"), body.get("local_hour")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise InputError("must be a whole number", where="limit")
    if not isinstance(hour, int) or isinstance(hour, bool):
        raise InputError("an hour from 0 to 23 is required", where="local_hour")
    default_timezone = body.get("default_timezone") or "UTC"
    if not isinstance(default_timezone, str):
        raise InputError("must be a time zone name such as Europe/Paris", where="default_timezone")
    wave = start_wave(get_runtime(), campaign_id, limit, local_hour=hour, default_timezone=default_timezone)
    return jsonify(wave), 202
