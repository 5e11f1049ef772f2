"""ESP webhooks: each provider's documented payload and documented authentication, read into bounce
and complaint reports. No Flask here: app/api/bounces.py hands over the raw request.

- Amazon SES through SNS: the SNS message signature (SignatureVersion 1: SHA1withRSA, 2:
  SHA256withRSA) over the documented canonical string, checked with the certificate at
  SigningCertURL, which must be an https URL on sns.<region>.amazonaws.com.
- SendGrid Event Webhook: ECDSA (P-256, SHA-256) over timestamp + raw body, with the public key
  from the Mail Settings page; headers X-Twilio-Email-Event-Webhook-Signature / -Timestamp.
- Postmark: HTTP basic auth credentials set in the webhook URL (Postmark's documented way).
- Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key; tokens are single-use.

An authenticated request is acted on once (campaigns.sending.esp_replay). A signing certificate
that cannot be fetched raises CertificateUnavailable (503, SNS delivers again), never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from campaigns.errors import InputError
from campaigns.sending.bounces import COMPLAINT, HARD, SOFT

MAX_AGE_SECONDS = 600  # signed timestamps older than this are refused (replays)
# SNS signs no expiry; its HTTP delivery retries end within an hour, so an older Timestamp is a replay.
SNS_MAX_AGE_SECONDS = 3600
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


class BadSignature(Exception):
    """The request is not from the provider it claims (401)."""


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched now (503: the provider retries)."""


@dataclass(frozen=True)
class EspReport:
    kind: str  # hard | soft | complaint
    source: str
    email: str
    message_id: str = ""  # our Message-ID header, when the provider quotes it
    detail: str = ""


# --- Amazon SES through SNS ------------------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def sns_canonical(message: Mapping[str, Any]) -> bytes:
    kind = message.get("Type")
    if kind not in _SNS_FIELDS:
        raise InputError(f"unknown SNS message type {kind!r}", where="Type")
    lines = []
    for name in _SNS_FIELDS[kind]:
        if name == "Subject" and message.get("Subject") is None:
            continue
        if not isinstance(message.get(name), str):
            raise InputError("missing from the SNS message", where=name)
        lines += [name, message[name]]
    return ("\n".join(lines) + "\n").encode()


def is_sns_url(url: str) -> bool:
    """Only https URLs on sns.<region>.amazonaws.com are ever fetched (certificates, confirmations)."""
    parsed = urlparse(url)
    return parsed.scheme == "https" and bool(_SNS_HOST.match(parsed.hostname or "")) and parsed.port is None


def check_cert_url(url: str) -> None:
    if not is_sns_url(url) or not urlparse(url).path.endswith(".pem"):
        raise BadSignature(f"SigningCertURL is not an SNS certificate URL: {url!r}")


def check_sns_age(message: Mapping[str, Any], now: float | None = None) -> None:
    stamp = str(message.get("Timestamp", ""))
    try:
        sent = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadSignature(f"unreadable SNS Timestamp {stamp[:40]!r}") from exc
    if sent.tzinfo is None:
        raise BadSignature("the SNS Timestamp has no time zone")
    if abs((now or time.time()) - sent.timestamp()) > SNS_MAX_AGE_SECONDS:
        raise BadSignature("the SNS Timestamp is too old (a replay)")


def verify_sns(
    message: Mapping[str, Any], fetch_cert: Callable[[str], bytes], now: float | None = None
) -> None:
    url = str(message.get("SigningCertURL", ""))
    check_cert_url(url)
    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise BadSignature(f"unsupported SNS SignatureVersion {version!r}")
    check_sns_age(message, now)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        pem = fetch_cert(url)
    except (ValueError, TypeError) as exc:
        raise BadSignature(f"unreadable SNS signature: {exc}") from exc
    except OSError as exc:  # unreachable, refused, timed out, TLS failure, HTTP error
        raise CertificateUnavailable(f"the SNS signing certificate could not be fetched: {exc}") from exc
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except (ValueError, TypeError) as exc:
        raise BadSignature(f"unreadable SNS signature or certificate: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignature("the SNS certificate does not hold an RSA key")
    try:
        key.verify(signature, sns_canonical(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature as exc:
        raise BadSignature("the SNS signature does not match") from exc


def _ses_message_id(mail: Mapping[str, Any]) -> str:
    common = mail.get("commonHeaders") or {}
    if common.get("messageId"):
        return str(common["messageId"])
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value", ""))
    return ""


def parse_ses(notification: Mapping[str, Any]) -> list[EspReport]:
    """An SES notification (notificationType) or event (eventType): Bounce and Complaint."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    message_id = _ses_message_id(mail)
    out = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        for r in bounce.get("bouncedRecipients") or []:
            detail = r.get("diagnosticCode") or f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
            out.append(
                EspReport(
                    HARD if hard else SOFT, "ses", str(r.get("emailAddress", "")), message_id, str(detail)
                )
            )
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        detail = str(complaint.get("complaintFeedbackType") or "complaint")
        for r in complaint.get("complainedRecipients") or []:
            out.append(EspReport(COMPLAINT, "ses", str(r.get("emailAddress", "")), message_id, detail))
    return out


# --- SendGrid Event Webhook -------------------------------------------------------------------


def verify_sendgrid(
    public_key_b64: str, signature_b64: str, timestamp: str, body: bytes, now: float | None = None
) -> None:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
        signature = base64.b64decode(signature_b64, validate=True)
        stamp = int(timestamp)
    except (ValueError, TypeError) as exc:
        raise BadSignature(f"unreadable SendGrid signature, timestamp or key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadSignature("the SendGrid verification key is not an ECDSA key")
    if abs((now or time.time()) - stamp) > MAX_AGE_SECONDS:
        raise BadSignature("the SendGrid timestamp is too old")
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BadSignature("the SendGrid signature does not match") from exc


def parse_sendgrid(events: Sequence[Mapping[str, Any]]) -> list[EspReport]:
    """bounce (type bounce: hard, type blocked: soft), dropped for a bounced address, spamreport."""
    out = []
    for i, e in enumerate(events):
        if not isinstance(e, Mapping):
            raise InputError("each event must be an object", where=f"[{i}]")
        event, email = e.get("event"), str(e.get("email", ""))
        message_id = str(e.get("smtp-id", ""))
        detail = " ".join(str(e[k]) for k in ("status", "reason") if e.get(k))
        if event == "bounce":
            out.append(
                EspReport(SOFT if e.get("type") == "blocked" else HARD, "sendgrid", email, message_id, detail)
            )
        elif event == "dropped" and "bounce" in str(e.get("reason", "")).lower():
            out.append(EspReport(HARD, "sendgrid", email, message_id, detail))
        elif event == "spamreport":
            out.append(EspReport(COMPLAINT, "sendgrid", email, message_id, "spamreport"))
    return out


# --- Postmark ---------------------------------------------------------------------------------

POSTMARK_SOFT = {"Transient", "SoftBounce", "DnsError", "Blocked"}  # Type names in Postmark's bounce docs


def verify_basic_auth(expected_user: str, expected_password: str, user: str, password: str) -> None:
    ok = hmac.compare_digest(user.encode(), expected_user.encode())
    ok &= hmac.compare_digest(password.encode(), expected_password.encode())
    if not ok:
        raise BadSignature("wrong webhook credentials")


def parse_postmark(body: Mapping[str, Any]) -> list[EspReport]:
    record = body.get("RecordType")
    email = str(body.get("Email", ""))
    if record == "Bounce":
        kind = body.get("Type")
        if kind == "HardBounce" or body.get("TypeCode") == 1:
            severity = HARD
        elif kind in POSTMARK_SOFT:
            severity = SOFT
        else:
            return []
        detail = f"{kind}: {body.get('Description', '')} {body.get('Details', '')}".strip()
        return [EspReport(severity, "postmark", email, "", detail)]
    if record == "SpamComplaint":
        return [EspReport(COMPLAINT, "postmark", email, "", "SpamComplaint")]
    return []


# --- Mailgun ----------------------------------------------------------------------------------


def verify_mailgun(signing_key: str, signature: Mapping[str, Any], now: float | None = None) -> str:
    """Checks the HMAC and the age; returns the token, which the caller must refuse if seen before."""
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    given = str(signature.get("signature", ""))
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(given, expected):
        raise BadSignature("the Mailgun signature does not match")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > MAX_AGE_SECONDS:
        raise BadSignature("the Mailgun timestamp is too old")
    return token


def parse_mailgun(event: Mapping[str, Any]) -> list[EspReport]:
    kind = event.get("event")
    email = str(event.get("recipient", ""))
    headers = (event.get("message") or {}).get("headers") or {}
    message_id = str(headers.get("message-id", ""))
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    if kind == "failed":
        status = event.get("delivery-status") or {}
        detail = (
            f"{status.get('code', '')} {status.get('message') or status.get('description') or ''}".strip()
        )
        severity = HARD if event.get("severity") == "permanent" else SOFT
        return [EspReport(severity, "mailgun", email, message_id, detail or str(event.get("reason", "")))]
    if kind == "complained":
        return [EspReport(COMPLAINT, "mailgun", email, message_id, "complained")]
    return []
