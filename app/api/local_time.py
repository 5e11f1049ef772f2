"""Waves delivered at each contact's local time."""

from __future__ import annotations

from flask import Response, jsonify
from pydantic import Field

from app.api.responses_people import WaveStarted
from app.api.schema import ApiModel
from app.api.spec import route
from app.extensions import get_runtime
from campaigns.jobs import start_wave
from models import Role


class LocalWaveIn(ApiModel):
    limit: int | None = Field(
        None, ge=1, le=100_000_000, description="contacts in this wave; all that remain when omitted"
    )
    local_hour: int = Field(ge=0, le=23)
    default_timezone: str = Field(
        "UTC", min_length=1, max_length=64, description="for contacts without a known time zone"
    )


@route(
    "/campaigns/<int:campaign_id>/waves/local-time",
    "POST",
    role=Role.marketer,
    summary="Send a wave so each contact receives it at the given hour of their own time zone",
    body=LocalWaveIn,
    tag="campaigns",
    status=202,
    response=WaveStarted,
)
def send_local_time_wave(campaign_id: int, body: LocalWaveIn) -> tuple[Response, int]:
    wave = start_wave(
        get_runtime(),
        campaign_id,
        body.limit,
        local_hour=body.local_hour,
        default_timezone=body.default_timezone,
    )
    return jsonify(wave), 202
