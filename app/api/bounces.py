"""ESP webhooks for bounces and complaints: Amazon SES (through SNS), SendGrid, Postmark, Mailgun.

Each is public (no API token) and authenticated the way its provider documents (campaigns.sending.esp);
a request that fails that check gets 401, a replay of one already acted on 409
(campaigns.sending.esp_replay), and an SNS certificate that cannot be fetched 503. Like the tracking endpoints, these only find the send and
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

from app.api.responses import EspAnswer
from app.api.spec import route
from app.extensions import db, get_runtime
from campaigns.errors import InputError, NotFound
from campaigns.sending import esp, esp_replay
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


def _unavailable(exc: Exception) -> tuple[Response, int]:
    """SNS could not be reached to check the request: 503, so that SNS delivers it again later."""
    response = jsonify(error=f"cannot check the request now: {str(exc)[:300]}")
    response.headers["Retry-After"] = "60"
    return response, 503


def _record(reports: Sequence[esp.EspReport], provider: str, fingerprint: str | None) -> tuple[Response, int]:
    """Act on a request once: a replay of it (the same fingerprint) answers 409 and pushes nothing.
    `fingerprint` None: a request that cannot be told from its replay (a Postmark record without ID)."""
    rt = get_runtime()
    try:
        claimed = esp_replay.claim(rt.redis, provider, fingerprint) if fingerprint else None
    except esp_replay.Replayed as exc:
        return jsonify(error=str(exc)), 409
    matched = 0
    try:
        for r in reports:
            send_id = resolve_send(db(), send_id=None, message_id=r.message_id, email=r.email)
            if send_id is not None:
                push_report(rt.redis, send_id, r.kind, r.source, r.detail)
                matched += 1
    except BaseException:
        if claimed:
            esp_replay.release(rt.redis, claimed)
        raise
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
    errors=(401, 403),
    response=EspAnswer,
)
def ses_webhook() -> tuple[Response, int]:
    message = _json(request.get_data())  # SNS posts JSON as text/plain
    if not isinstance(message, dict):
        raise InputError("an SNS message is a JSON object", where="body")
    topics = current_app.config.get("SES_TOPIC_ARNS") or []
    if isinstance(topics, str):
        topics = [t.strip() for t in topics.split(",") if t.strip()]
    if topics and message.get("TopicArn") not in topics:  # before any fetch
        return jsonify(
            error=f"topic {str(message.get('TopicArn'))[:200]!r} is not one of SES_TOPIC_ARNS"
        ), 403
    try:
        esp.verify_sns(message, _fetcher())
    except esp.BadSignature as exc:
        return _unauthorized(exc)
    except esp.CertificateUnavailable as exc:
        return _unavailable(exc)
    fingerprint = f"{message.get('MessageId')}:{message.get('Signature')}"
    if message["Type"] == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not esp.is_sns_url(url):
            raise InputError("SubscribeURL is not an SNS URL", where="SubscribeURL")
        try:
            _fetcher()(url)
        except OSError as exc:
            return _unavailable(exc)
        return jsonify(confirmed=True), 200
    if message["Type"] != "Notification":
        return jsonify(accepted=0, unmatched=0), 200
    notification = _json(message["Message"].encode())
    if not isinstance(notification, dict):
        raise InputError("the SES notification is a JSON object", where="Message")
    return _record(esp.parse_ses(notification), "ses", fingerprint)


@route(
    "/webhooks/sendgrid",
    "POST",
    role=None,
    summary="SendGrid Event Webhook (signed)",
    tag="deliverability",
    errors=(401, 403),
    response=EspAnswer,
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
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    return _record(esp.parse_sendgrid(events), "sendgrid", signature)


@route(
    "/webhooks/postmark",
    "POST",
    role=None,
    summary="Postmark bounce and spam complaint webhooks",
    tag="deliverability",
    errors=(401, 403),
    response=EspAnswer,
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
    record_id = body.get("ID")
    fingerprint = f"{body.get('RecordType')}:{record_id}" if record_id not in (None, "") else None
    return _record(esp.parse_postmark(body), "postmark", fingerprint)


@route(
    "/webhooks/mailgun",
    "POST",
    role=None,
    summary="Mailgun failed and complained events (HMAC)",
    tag="deliverability",
    errors=(401, 403),
    response=EspAnswer,
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
    event = body.get("event-data")
    if not isinstance(event, dict):
        raise InputError("missing", where="event-data")
    return _record(esp.parse_mailgun(event), "mailgun", token)
