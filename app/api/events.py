"""Events from outside the email: conversions (by contact token or email), bounces and complaints
reported by an MTA or ESP. Like the tracking endpoints, these only enqueue; a worker stores them."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Response, jsonify

from app.api.errors import json_body
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.contacts import normalize_email
from campaigns.errors import InputError
from campaigns.tokens import TokenSigner
from campaigns.tracking import RawEvent, conversion_key, push
from models import Contact, Role, Send

CONVERSION_BODY = {
    "type": "object",
    "properties": {
        "campaign_id": {"type": "integer"},
        "email": {"type": "string", "description": "the contact's email, or give `token`"},
        "token": {"type": "string", "description": "the `mr` token the click redirect handed the shop"},
        "value": {"type": "number"},
        "order_id": {"type": "string", "description": "replays of the same order are counted once"},
    },
}
EVENT_BODY = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["bounce", "complaint", "delivered"]},
        "message_id": {"type": "string"},
        "send_id": {"type": "integer"},
    },
    "required": ["kind"],
}


def _send_for(body: dict[str, object]) -> Send:
    token = body.get("token")
    if token:
        ref = TokenSigner(get_runtime().settings.secret_key).verify(str(token), expected_kind="conversion")
        if ref is None:
            raise InputError("the token is not valid", where="token")
        send = db().get(Send, ref.send_id)
    else:
        campaign_id = body.get("campaign_id")
        if not isinstance(campaign_id, int):
            raise InputError("campaign_id (a number) is required with email", where="campaign_id")
        email = normalize_email(str(body.get("email", "")))
        send = db().scalar(
            sa.select(Send)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == campaign_id, Contact.email == email)
        )
    if send is None:
        raise InputError("no email of this campaign went to this contact", where="email")
    return send


@route(
    "/conversions",
    "POST",
    role=Role.marketer,
    summary="Record a conversion with its value",
    body=CONVERSION_BODY,
    tag="events",
)
def record_conversion() -> tuple[Response, int]:
    body = json_body()
    try:
        value = float(body.get("value", 0))
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be a number, not {body.get('value')!r}", where="value") from exc
    send = _send_for(body)
    order = str(body["order_id"]) if body.get("order_id") not in (None, "") else None
    push(
        get_runtime().redis,
        RawEvent(
            kind="conversion",
            send_id=send.id,
            value=value,
            at=time.time(),
            key=conversion_key(send.campaign_id, send.contact_id, order),
        ),
    )
    return jsonify(accepted=True, send_id=send.id), 202


@route(
    "/events",
    "POST",
    role=Role.marketer,
    summary="Report a bounce, complaint or delivery",
    body=EVENT_BODY,
    tag="events",
)
def record_event() -> tuple[Response, int]:
    body = json_body()
    kind = body.get("kind")
    if kind not in ("bounce", "complaint", "delivered"):
        raise InputError("kind must be bounce, complaint or delivered", where="kind")
    if body.get("send_id") is not None:
        send = db().get(Send, body["send_id"])
    elif body.get("message_id"):
        send = db().scalar(sa.select(Send).where(Send.message_id == str(body["message_id"])))
    else:
        raise InputError("give send_id or message_id", where="body")
    if send is None:
        raise InputError("no such send", where="send_id" if body.get("send_id") is not None else "message_id")
    push(
        get_runtime().redis,
        RawEvent(kind=str(kind), send_id=send.id, at=time.time(), key=f"{kind}:{send.id}"),
    )
    return jsonify(accepted=True, send_id=send.id), 202
