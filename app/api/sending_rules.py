"""The workspace's sending rules: frequency caps per contact across campaigns and flows, and quiet
hours in each contact's time zone (campaigns.sending.caps). The same schema validates the API body,
the Settings page's form, and writes the OpenAPI entry."""

from __future__ import annotations

from typing import Any, Self

from flask import Response, jsonify
from pydantic import BaseModel, Field, field_validator, model_validator

from app.api.schema import ApiModel
from app.api.spec import route
from app.auth import actor
from app.extensions import db
from campaigns.sending.cap_claims import load_rules, save_rules
from campaigns.sending.caps import known_zone
from models import Role

TAG = "settings"
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class SendingRulesIn(ApiModel):
    max_per_24h: int | None = Field(
        None,
        ge=1,
        le=100,
        description="at most this many marketing emails per contact in any 24 h; off when null",
    )
    max_per_7d: int | None = Field(
        None, ge=1, le=500, description="at most this many per contact in any 7 days; off when null"
    )
    quiet_start: str | None = Field(
        None, pattern=CLOCK, description="HH:MM local time when quiet hours begin (e.g. 21:00); off when null"
    )
    quiet_end: str | None = Field(
        None,
        pattern=CLOCK,
        description="HH:MM local time when they end (e.g. 08:00; before the start: overnight)",
    )
    default_timezone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        description="IANA zone for contacts whose time zone is empty or unknown",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if known_zone(value) is None:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.quiet_start is None) != (self.quiet_end is None):
            missing = "quiet_end" if self.quiet_end is None else "quiet_start"
            raise ValueError(f"quiet hours need both quiet_start and quiet_end ({missing} is missing)")
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValueError("quiet_start and quiet_end must differ")
        if self.max_per_24h and self.max_per_7d and self.max_per_7d < self.max_per_24h:
            raise ValueError("max_per_7d must be at least max_per_24h")
        return self


class SendingRulesOut(BaseModel):
    max_per_24h: int | None
    max_per_7d: int | None
    quiet_start: str | None
    quiet_end: str | None
    default_timezone: str


def rules_json() -> dict[str, Any]:
    return load_rules(db()).to_json()


@route(
    "/settings/sending-rules",
    "GET",
    role=Role.viewer,
    summary="The workspace's frequency caps and quiet hours",
    tag=TAG,
    response=SendingRulesOut,
)
def sending_rules_get() -> Response:
    return jsonify(rules_json())


@route(
    "/settings/sending-rules",
    "PUT",
    role=Role.admin,
    summary="Set the frequency caps per contact (campaigns and flows together) and the quiet hours",
    body=SendingRulesIn,
    tag=TAG,
    response=SendingRulesOut,
)
def sending_rules_put(body: SendingRulesIn) -> Response:
    rules = save_rules(db(), body.model_dump(), actor())
    db().commit()
    return jsonify(rules.to_json())
