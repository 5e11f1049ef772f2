"""A signed ESP request is acted on once: replays answer 409 and push nothing; SNS messages past
their window are refused; an SNS certificate that cannot be fetched answers 503, and the topic is
checked before anything is fetched."""

from __future__ import annotations

import base64
import json
import urllib.error
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from models import Send
from tests.campaigns.sending.test_esp_webhooks import (  # noqa: F401 - `sends` is a fixture
    CERT_URL,
    TOPIC,
    arm_count,
    sendgrid_headers,
    sendgrid_signer,
    sends,
    ses_bounce,
    sns_message,
    sns_signer,
)


def _bounce_events(app: Any) -> int:
    from campaigns.events.tracking import STREAM

    return int(app.extensions["mailramp"].redis.xlen(STREAM))


def test_a_replayed_sendgrid_request_is_refused(
    app: Any,
    client: FlaskClient,
    session: Session,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    key, app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = sendgrid_signer()
    body = json.dumps(
        [{"email": "person1@example.com", "event": "bounce", "type": "bounce", "reason": "550 unknown"}]
    ).encode()
    headers = sendgrid_headers(key, body)
    first = client.post(
        "/api/v1/webhooks/sendgrid", data=body, headers=headers, content_type="application/json"
    )
    assert first.status_code == 200 and first.json["accepted"] == 1
    pushed = _bounce_events(app)
    again = client.post(
        "/api/v1/webhooks/sendgrid", data=body, headers=headers, content_type="application/json"
    )
    assert again.status_code == 409 and "replay" in again.json["error"]
    assert _bounce_events(app) == pushed
    ingest(app.extensions["mailramp"])
    assert arm_count(session, "bounce", sends["person1@example.com"].arm) == 1.0


def _ses(app: Any, sent: dict[str, Send], fetch: Any, **extra: str) -> dict[str, str]:
    key, cert = sns_signer()
    app.config.update(SNS_URL_FETCHER=fetch(cert), SES_TOPIC_ARNS=TOPIC)
    return sns_message(
        key, "Notification", ses_bounce(sent["person1@example.com"], "person1@example.com"), **extra
    )


def test_a_replayed_sns_message_is_refused(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    message = _ses(app, sends, lambda cert: lambda url: cert)
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(message)).status_code == 200
    again = client.post("/api/v1/webhooks/ses", data=json.dumps(message))
    assert again.status_code == 409


def test_an_sns_message_past_its_window_is_refused(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message = _ses(app, sends, lambda cert: lambda url: cert, Timestamp=old)
    answer = client.post("/api/v1/webhooks/ses", data=json.dumps(message))
    assert answer.status_code == 401 and "Timestamp" in answer.json["error"]


def test_an_unreachable_certificate_answers_503(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    def unreachable(cert: bytes) -> Any:
        def fetch(url: str) -> bytes:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

        return fetch

    message = _ses(app, sends, unreachable)
    answer = client.post("/api/v1/webhooks/ses", data=json.dumps(message))
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "certificate" in answer.json["error"]


def test_the_topic_is_checked_before_any_fetch(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    fetched: list[str] = []

    def recording(cert: bytes) -> Any:
        def fetch(url: str) -> bytes:
            fetched.append(url)
            return cert

        return fetch

    message = _ses(app, sends, recording)
    app.config["SES_TOPIC_ARNS"] = "arn:aws:sns:us-east-1:123456789012:other"
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(message)).status_code == 403
    assert fetched == []
    forged = {**message, "TopicArn": "arn:aws:sns:us-east-1:666:evil", "SigningCertURL": CERT_URL}
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(forged)).status_code == 403
    assert fetched == []


def test_a_replayed_postmark_record_is_refused(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
) -> None:
    app.config.update(POSTMARK_WEBHOOK_USER="postmark", POSTMARK_WEBHOOK_PASSWORD="s3cret-hook")
    right = {"Authorization": "Basic " + base64.b64encode(b"postmark:s3cret-hook").decode()}
    spam = {"RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "Email": "person2@example.com"}
    assert client.post("/api/v1/webhooks/postmark", json=spam, headers=right).status_code == 200
    assert client.post("/api/v1/webhooks/postmark", json=spam, headers=right).status_code == 409


def test_a_request_that_failed_is_acted_on_when_retried(
    app: Any,
    client: FlaskClient,
    sends: dict[str, Send],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.api.bounces as bounces

    message = _ses(app, sends, lambda cert: lambda url: cert)
    real = bounces.push_report

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(bounces, "push_report", broken)
    with pytest.raises(ConnectionError):  # TESTING: the 500 propagates
        client.post("/api/v1/webhooks/ses", data=json.dumps(message))
    monkeypatch.setattr(bounces, "push_report", real)
    answer = client.post("/api/v1/webhooks/ses", data=json.dumps(message))
    assert answer.status_code == 200 and answer.json["accepted"] == 1
