"""Events from outside the email: conversions (by contact token or email), bounces and complaints
reported by an MTA or ESP. Like the tracking endpoints, these only enqueue; a worker stores them."""

from __future__ import annotations

import time
from typing import Literal

import sqlalchemy as sa
from flask import Response, jsonify
from pydantic import Field

from app.api.responses import EventAccepted
from app.api.schema import ApiModel, Id
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.contacts.records import normalize_email
from campaigns.errors import InputError
from campaigns.events.tokens import TokenSigner
from campaigns.events.tracking import MAX_CONVERSION_VALUE, RawEvent, conversion_key, push
from models import Contact, Role, Send


class ConversionIn(ApiModel):
    campaign_id: Id | None = Field(None, description="with `email`")
    email: str | None = Field(None, max_length=320, description="the contact's email, or give `token`")
    token: str | None = Field(
        None, max_length=1000, description="the `mr` token the click redirect handed the shop"
    )
    value: float = Field(
        0.0,
        ge=-MAX_CONVERSION_VALUE,
        le=MAX_CONVERSION_VALUE,
        description="revenue; negative: a refund (only here, never on the public /t/v endpoint)",
    )
    order_id: str | None = Field(
        None, max_length=1000, description="replays of the same order are counted once"
    )


class EventIn(ApiModel):
    kind: Literal["bounce", "complaint", "delivered"]
    message_id: str | None = Field(None, max_length=1000)
    send_id: Id | None = None


def _send_for(body: ConversionIn) -> Send:
    if body.token:
        ref = TokenSigner(get_runtime().settings.secret_key).verify(body.token, expected_kind="conversion")
        if ref is None:
            raise InputError("the token is not valid", where="token")
        send = db().get(Send, ref.send_id)
    else:
        if body.campaign_id is None:
            raise InputError("campaign_id is required with email", where="campaign_id")
        email = normalize_email(body.email or "")
        send = db().scalar(
            sa.select(Send)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == body.campaign_id, Contact.email == email)
        )
    if send is None:
        raise InputError("no email of this campaign went to this contact", where="email")
    return send


@route(
    "/conversions",
    "POST",
    role=Role.marketer,
    summary="Record a conversion with its value",
    body=ConversionIn,
    tag="events",
    status=202,
    response=EventAccepted,
)
def record_conversion(body: ConversionIn) -> tuple[Response, int]:
    send = _send_for(body)
    push(
        get_runtime().redis,
        RawEvent(
            kind="conversion",
            send_id=send.id,
            value=body.value,
            at=time.time(),
            key=conversion_key(send.campaign_id, send.contact_id, body.order_id or None),
        ),
    )
    return jsonify(accepted=True, send_id=send.id), 202


@route(
    "/events",
    "POST",
    role=Role.marketer,
    summary="Report a bounce, complaint or delivery",
    body=EventIn,
    tag="events",
    status=202,
    response=EventAccepted,
)
def record_event(body: EventIn) -> tuple[Response, int]:
    if body.send_id is not None:
        send = db().get(Send, body.send_id)
    elif body.message_id:
        send = db().scalar(sa.select(Send).where(Send.message_id == body.message_id))
    else:
        raise InputError("give send_id or message_id", where="body")
    if send is None:
        raise InputError("no such send", where="send_id" if body.send_id is not None else "message_id")
    push(
        get_runtime().redis,
        RawEvent(kind=body.kind, send_id=send.id, at=time.time(), key=f"{body.kind}:{send.id}"),
    )
    return jsonify(accepted=True, send_id=send.id), 202
