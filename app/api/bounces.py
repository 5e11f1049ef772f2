"""ESP webhooks for bounces and complaints: Amazon SES (through SNS), SendGrid, Postmark, Mailgun.

Each is public (no API token) and authenticated the way its provider documents (campaigns.sending.esp);
a request that fails that check gets 401. Like the tracking endpoints, these only find the send and
push events; the ingest worker stores them, suppresses, and updates the per-arm metrics.

Configuration: SES_TOPIC_ARNS (optional allow-list), SENDGRID_WEBHOOK_PUBLIC_KEY,
POSTMARK_WEBHOOK_USER / POSTMARK_WEBHOOK_PASSWORD, MAILGUN_WEBHOOK_SIGNING_KEY. An endpoint whose
provider is not configured answers 404.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from flask import Response, current_app, jsonify, request

from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.errors import InputError, NotFound
from campaigns.sending import esp
from campaigns.sending.bounces import push_report, resolve_send

_CERTS: dict[str, bytes] = {}


def fetch_sns_url(url: str) -> bytes:
    """GET an SNS URL (a signing certificate, a subscription confirmation); certificates are cached."""
    if not esp.is_sns_url(url):
        raise esp.BadSignature(f"refusing to fetch a URL that is not on sns.*.amazonaws.com: {url!r}")
    if url in _CERTS:
        return _CERTS[url]
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    if url.endswith(".pem"):
        _CERTS[url] = body
    return body


def _fetcher() -> Callable[[str], bytes]:
    fetch: Callable[[str], bytes] = current_app.config.get("SNS_URL_FETCHER") or fetch_sns_url
    return fetch


def _configured(key: str, provider: str) -> str:
    value = current_app.config.get(key)
    if not value:
        raise NotFound(f"{provider} webhooks are not configured here (set {key})")
    return str(value)


def _unauthorized(exc: esp.BadSignature) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 401


def _record(reports: Sequence[esp.EspReport]) -> tuple[Response, int]:
    rt = get_runtime()
    matched = 0
    for r in reports:
        send_id = resolve_send(db(), send_id=None, message_id=r.message_id, email=r.email)
        if send_id is not None:
            push_report(rt.redis, send_id, r.kind, r.source, r.detail)
            matched += 1
    return jsonify(accepted=matched, unmatched=len(reports) - matched), 200


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InputError(f"the body is not JSON: {exc}", where="body") from exc


@route(
    "/webhooks/ses",
    "POST",
    role=None,
    summary="Amazon SES bounces and complaints (SNS)",
    tag="deliverability",
)
def ses_webhook() -> tuple[Response, int]:
    message = _json(request.get_data())  # SNS posts JSON as text/plain
    if not isinstance(message, dict):
        raise InputError("an SNS message is a JSON object", where="body")
    try:
        esp.verify_sns(message, _fetcher())
    except esp.BadSignature as exc:
        return _unauthorized(exc)
    topics = current_app.config.get("SES_TOPIC_ARNS") or []
    if isinstance(topics, str):
        topics = [t.strip() for t in topics.split(",") if t.strip()]
    if topics and message.get("TopicArn") not in topics:
        return jsonify(error=f"topic {message.get('TopicArn')!r} is not one of SES_TOPIC_ARNS"), 403
    if message["Type"] == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not esp.is_sns_url(url):
            raise InputError("SubscribeURL is not an SNS URL", where="SubscribeURL")
        _fetcher()(url)
        return jsonify(confirmed=True), 200
    if message["Type"] != "Notification":
        return jsonify(accepted=0, unmatched=0), 200
    notification = _json(message["Message"].encode())
    if not isinstance(notification, dict):
        raise InputError("the SES notification is a JSON object", where="Message")
    return _record(esp.parse_ses(notification))


@route(
    "/webhooks/sendgrid", "POST", role=None, summary="SendGrid Event Webhook (signed)", tag="deliverability"
)
def sendgrid_webhook() -> tuple[Response, int]:
    key = _configured("SENDGRID_WEBHOOK_PUBLIC_KEY", "SendGrid")
    body = request.get_data()
    try:
        esp.verify_sendgrid(
            key,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
            body,
        )
    except esp.BadSignature as exc:
        return _unauthorized(exc)
    events = _json(body)
    if not isinstance(events, list):
        raise InputError("the Event Webhook posts a JSON array of events", where="body")
    return _record(esp.parse_sendgrid(events))


@route(
    "/webhooks/postmark",
    "POST",
    role=None,
    summary="Postmark bounce and spam complaint webhooks",
    tag="deliverability",
)
def postmark_webhook() -> tuple[Response, int]:
    user = _configured("POSTMARK_WEBHOOK_USER", "Postmark")
    password = _configured("POSTMARK_WEBHOOK_PASSWORD", "Postmark")
    auth = request.authorization
    try:
        esp.verify_basic_auth(
            user, password, auth.username or "" if auth else "", auth.password or "" if auth else ""
        )
    except esp.BadSignature as exc:
        return _unauthorized(exc)
    body = _json(request.get_data())
    if not isinstance(body, dict):
        raise InputError("a Postmark webhook posts a JSON object", where="body")
    return _record(esp.parse_postmark(body))


@route(
    "/webhooks/mailgun",
    "POST",
    role=None,
    summary="Mailgun failed and complained events (HMAC)",
    tag="deliverability",
)
def mailgun_webhook() -> tuple[Response, int]:
    key = _configured("MAILGUN_WEBHOOK_SIGNING_KEY", "Mailgun")
    body = _json(request.get_data())
    if not isinstance(body, dict) or not isinstance(body.get("signature"), dict):
        raise InputError("a Mailgun webhook posts {signature, event-data}", where="signature")
    try:
        token = esp.verify_mailgun(key, body["signature"])
    except esp.BadSignature as exc:
        return _unauthorized(exc)
    if not get_runtime().redis.set(f"mailramp:mailgun-token:{token}", 1, nx=True, ex=2 * esp.MAX_AGE_SECONDS):
        return _unauthorized(esp.BadSignature("this Mailgun token was used already (a replay)"))
    event = body.get("event-data")
    if not isinstance(event, dict):
        raise InputError("missing", where="event-data")
    return _record(esp.parse_mailgun(event))
