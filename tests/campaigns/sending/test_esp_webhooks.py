"""ESP webhooks in each provider's documented shape, posted with valid and invalid authentication:
Amazon SES through SNS, SendGrid's Event Webhook, Postmark, Mailgun. Keys and certificates are made
here; the SNS certificate fetch is injected (SNS_URL_FETCHER), the URL checks are the production ones."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.jobs import start_wave
from campaigns.runtime import Runtime
from campaigns.sending.esp import sns_canonical
from campaigns.sending.send import send_batch
from models import ArmMetric, Contact, Send, Suppression
from tests.campaigns.sending.sink import RecordingSink, running
from tests.factories import add_campaign, add_contacts, add_template

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"


@pytest.fixture()
def sends(app: Any, session: Session) -> dict[str, Send]:
    """Four contacts mailed in one AI wave; email -> send."""
    rt: Runtime = app.extensions["mailramp"]
    with running(RecordingSink()) as sink:
        rt.settings = dataclasses.replace(rt.settings, smtp_url=sink.url)
        add_contacts(session, 4)
        campaign = add_campaign(session, add_template(session).id, ai={"exposure_percent": 50})
        wave = start_wave(rt, campaign.id, None)
        rt.redis.delete(*rt.redis.keys("rq:*"))
        send_batch(rt, campaign.id, wave["wave_id"], 0)
    session.expire_all()
    rows = session.execute(sa.select(Contact.email, Send).join(Send, Send.contact_id == Contact.id)).all()
    return {email: send for email, send in rows}


def status(session: Session, email: str) -> str:
    session.expire_all()
    return str(session.scalar(sa.select(Contact.status).where(Contact.email == email)))


def arm_count(session: Session, metric: str, arm: str) -> float:
    value = session.scalar(
        sa.select(ArmMetric.count).where(
            ArmMetric.metric == metric, ArmMetric.arm == arm, ArmMetric.segment == ""
        )
    )
    return float(value or 0)


# --- Amazon SES through SNS ----------------------------------------------------------------------


def sns_signer() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def sns_message(
    key: rsa.RSAPrivateKey, kind: str, message: str, version: str = "1", **extra: str
) -> dict[str, str]:
    body = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_canonical(body), padding.PKCS1v15(), algorithm)
    return {**body, "Signature": base64.b64encode(signature).decode()}


def ses_bounce(send: Send, email: str) -> str:
    # The shape of an SES bounce notification (SES developer guide, "notification contents").
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": email,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": "2026-11-29T12:00:00.000Z",
                "feedbackId": "00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000",
            },
            "mail": {
                "timestamp": "2026-11-29T11:59:59.000Z",
                "messageId": "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
                "source": "shop@example.com",
                "destination": [email],
                "headersTruncated": False,
                "headers": [{"name": "Message-ID", "value": send.message_id}],
                "commonHeaders": {"messageId": send.message_id, "subject": "Picks"},
            },
        }
    )


def test_ses_notifications_signed_by_sns_are_acted_on(
    app: Any, client: FlaskClient, session: Session, sends: dict[str, Send]
) -> None:
    key, cert = sns_signer()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return cert if url == CERT_URL else b"confirmed"

    app.config.update(SNS_URL_FETCHER=fetch, SES_TOPIC_ARNS=TOPIC)
    target = sends["person1@example.com"]
    bounce = sns_message(
        key,
        "Notification",
        ses_bounce(target, "person1@example.com"),
        version="2",
        Subject="Amazon SES Email Event Notification",
    )
    answer = client.post("/api/v1/webhooks/ses", data=json.dumps(bounce), content_type="text/plain")
    assert answer.status_code == 200 and answer.json == {"accepted": 1, "unmatched": 0}
    complaint = json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "person2@example.com"}],
                "complaintFeedbackType": "abuse",
                "timestamp": "2026-11-29T12:00:00.000Z",
                "feedbackId": "x",
            },
            "mail": {
                "messageId": "ses-id",
                "commonHeaders": {"messageId": sends["person2@example.com"].message_id},
            },
        }
    )
    assert (
        client.post(
            "/api/v1/webhooks/ses", data=json.dumps(sns_message(key, "Notification", complaint))
        ).status_code
        == 200
    )

    # Tampered, signed by another key, or a certificate from elsewhere: 401, and nothing fetched from elsewhere.
    tampered = {**bounce, "Message": bounce["Message"].replace("person1", "person3")}
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(tampered)).status_code == 401
    other_key, _ = sns_signer()
    assert (
        client.post(
            "/api/v1/webhooks/ses", data=json.dumps(sns_message(other_key, "Notification", "{}"))
        ).status_code
        == 401
    )
    evil = {**bounce, "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem"}
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(evil)).status_code == 401
    assert set(fetched) == {CERT_URL}
    # Another topic is refused.
    app.config["SES_TOPIC_ARNS"] = "arn:aws:sns:us-east-1:123456789012:other"
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(bounce)).status_code == 403
    app.config["SES_TOPIC_ARNS"] = TOPIC
    # A subscription is confirmed by fetching its SubscribeURL.
    subscribe_url = (
        f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc"
    )
    confirm = sns_message(
        key,
        "SubscriptionConfirmation",
        "You have chosen to subscribe",
        SubscribeURL=subscribe_url,
        Token="abc",
    )
    assert client.post("/api/v1/webhooks/ses", data=json.dumps(confirm)).json == {"confirmed": True}
    assert fetched[-1] == subscribe_url

    rt: Runtime = app.extensions["mailramp"]
    ingest(rt)
    assert status(session, "person1@example.com") == "bounced"
    assert status(session, "person2@example.com") == "complained"
    assert status(session, "person3@example.com") == "active"
    row = session.scalar(sa.select(Suppression).where(Suppression.email == "person1@example.com"))
    assert row is not None and row.detail == "ses: smtp; 550 5.1.1 user unknown"
    assert arm_count(session, "bounce", target.arm) == 1.0
    assert arm_count(session, "complaint", sends["person2@example.com"].arm) == 1.0


# --- SendGrid Event Webhook ----------------------------------------------------------------------


def sendgrid_signer() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A signing key for SendGrid's signed Event Webhook, and its public key as configured
    (SENDGRID_WEBHOOK_PUBLIC_KEY: base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(public).decode()


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, stamp: str | None = None
) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(
            key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        ).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def test_sendgrid_events_need_a_valid_ecdsa_signature(
    app: Any, client: FlaskClient, session: Session, sends: dict[str, Send]
) -> None:
    key, app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = sendgrid_signer()
    # Event shapes from SendGrid's Event Webhook reference.
    events = [
        {
            "email": "person1@example.com",
            "timestamp": 1513299569,
            "smtp-id": sends["person1@example.com"].message_id,
            "event": "bounce",
            "category": "weekly",
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
            "sg_message_id": "LRzXl66hRvmDL1sHs5IoOw.filter0",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
        },
        {
            "email": "person2@example.com",
            "timestamp": 1513299569,
            "event": "spamreport",
            "sg_event_id": "x1",
            "sg_message_id": "y1",
        },
        {
            "email": "person3@example.com",
            "timestamp": 1513299569,
            "event": "delivered",
            "response": "250 OK",
            "sg_event_id": "x2",
            "sg_message_id": "y2",
        },
    ]
    body = json.dumps(events).encode()

    def post(payload: bytes, stamp: str, signature: bytes) -> Any:
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        return client.post(
            "/api/v1/webhooks/sendgrid", data=payload, headers=headers, content_type="application/json"
        )

    stamp = str(int(time.time()))
    good = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    assert post(body.replace(b"person1", b"person3"), stamp, good).status_code == 401
    old = str(int(time.time()) - 3600)
    assert post(body, old, key.sign(old.encode() + body, ec.ECDSA(hashes.SHA256()))).status_code == 401
    answer = post(body, stamp, good)
    assert answer.status_code == 200 and answer.json == {"accepted": 2, "unmatched": 0}
    ingest(app.extensions["mailramp"])
    assert (status(session, "person1@example.com"), status(session, "person2@example.com")) == (
        "bounced",
        "complained",
    )
    assert status(session, "person3@example.com") == "active"


# --- Postmark -----------------------------------------------------------------------------------


def test_postmark_webhooks_need_the_basic_auth_credentials(
    app: Any, client: FlaskClient, session: Session, sends: dict[str, Send]
) -> None:
    # Shape from Postmark's bounce webhook documentation.
    bounce = {
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce",
        "Tag": "weekly", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "person1@example.com", "From": "shop@example.com", "BouncedAt": "2026-11-29T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Picks",
    }  # fmt: skip
    assert client.post("/api/v1/webhooks/postmark", json=bounce).status_code == 404  # not configured
    app.config.update(POSTMARK_WEBHOOK_USER="postmark", POSTMARK_WEBHOOK_PASSWORD="s3cret-hook")
    wrong = base64.b64encode(b"postmark:guess").decode()
    assert (
        client.post(
            "/api/v1/webhooks/postmark", json=bounce, headers={"Authorization": f"Basic {wrong}"}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/webhooks/postmark", json=bounce).status_code == 401
    right = {"Authorization": "Basic " + base64.b64encode(b"postmark:s3cret-hook").decode()}
    assert client.post("/api/v1/webhooks/postmark", json=bounce, headers=right).json == {
        "accepted": 1,
        "unmatched": 0,
    }
    spam = {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Email": "person2@example.com",
    }
    assert client.post("/api/v1/webhooks/postmark", json=spam, headers=right).json == {
        "accepted": 1,
        "unmatched": 0,
    }
    ingest(app.extensions["mailramp"])
    assert (status(session, "person1@example.com"), status(session, "person2@example.com")) == (
        "bounced",
        "complained",
    )


# --- Mailgun ------------------------------------------------------------------------------------


def test_mailgun_webhooks_need_a_fresh_hmac(
    app: Any, client: FlaskClient, session: Session, sends: dict[str, Send]
) -> None:
    app.config["MAILGUN_WEBHOOK_SIGNING_KEY"] = "key-mailgun-signing"

    def signed(event: dict[str, Any], token: str, stamp: int | None = None) -> dict[str, Any]:
        timestamp = str(stamp or int(time.time()))
        digest = hmac.new(b"key-mailgun-signing", (timestamp + token).encode(), hashlib.sha256).hexdigest()
        return {
            "signature": {"timestamp": timestamp, "token": token, "signature": digest},
            "event-data": event,
        }

    # Shape from Mailgun's webhooks documentation ("failed", permanent).
    failed = {
        "event": "failed", "severity": "permanent", "reason": "bounce", "recipient": "person1@example.com",
        "timestamp": 1521233195.375624, "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "message": {"headers": {"message-id": sends["person1@example.com"].message_id.strip("<>"), "from": "shop@example.com", "to": "person1@example.com"}},
        "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist", "attempt-no": 1},
        "user-variables": {},
    }  # fmt: skip
    body = signed(failed, "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0")
    forged = {**body, "signature": {**body["signature"], "signature": "0" * 64}}
    assert client.post("/api/v1/webhooks/mailgun", json=forged).status_code == 401
    stale = signed(failed, "b" * 50, stamp=int(time.time()) - 3600)
    assert client.post("/api/v1/webhooks/mailgun", json=stale).status_code == 401
    assert client.post("/api/v1/webhooks/mailgun", json=body).json == {"accepted": 1, "unmatched": 0}
    assert client.post("/api/v1/webhooks/mailgun", json=body).status_code == 409  # the same token again
    complained = {"event": "complained", "recipient": "person2@example.com", "message": {"headers": {}}}
    assert client.post("/api/v1/webhooks/mailgun", json=signed(complained, "c" * 50)).status_code == 200
    bad = client.post("/api/v1/webhooks/mailgun", json={"event-data": {}})
    assert bad.status_code == 400 and bad.json["where"] == "signature"
    ingest(app.extensions["mailramp"])
    assert (status(session, "person1@example.com"), status(session, "person2@example.com")) == (
        "bounced",
        "complained",
    )
