"""Replay protection for ESP webhooks: a signed request is acted on once.

A signature proves who sent a request, not that it is new: anyone who captured one (a proxy log, a
leaked request) could post it again while its timestamp is accepted. So every authenticated request
leaves a fingerprint in Redis (shared by every web process) for as long as its signature would be
accepted, and a request whose fingerprint is there already is refused:

| provider | fingerprint                       | accepted for                            |
|----------|-----------------------------------|-----------------------------------------|
| SendGrid | the signature                     | timestamp within +-MAX_AGE_SECONDS      |
| Mailgun  | the token (single-use by design)  | timestamp within +-MAX_AGE_SECONDS      |
| SES/SNS  | the MessageId and the signature   | Timestamp within SNS_MAX_AGE_SECONDS    |
| Postmark | RecordType and the record's ID    | basic auth, no timestamp: POSTMARK_DAYS |

The fingerprint is taken before the reports are pushed and dropped again when pushing fails, so a
provider's retry after an error is acted on, and two concurrent copies are acted on once.
"""

from __future__ import annotations

import hashlib

from redis import Redis

from campaigns.sending.esp import MAX_AGE_SECONDS, SNS_MAX_AGE_SECONDS

POSTMARK_DAYS = 7
WINDOWS = {
    "sendgrid": 2 * MAX_AGE_SECONDS + 60,  # a timestamp up to MAX_AGE in the future or the past
    "mailgun": 2 * MAX_AGE_SECONDS + 60,
    "ses": 2 * SNS_MAX_AGE_SECONDS + 60,
    "postmark": POSTMARK_DAYS * 86400,
}


class Replayed(Exception):
    """This signed request was acted on already."""


def _key(provider: str, fingerprint: str) -> str:
    digest = hashlib.sha256(fingerprint.encode("utf-8", "surrogatepass")).hexdigest()
    return f"mailramp:esp-seen:{provider}:{digest}"


def claim(redis: Redis, provider: str, fingerprint: str) -> str:
    """The key now held for this request; `Replayed` when another copy held it first."""
    key = _key(provider, fingerprint)
    if not redis.set(key, 1, nx=True, ex=WINDOWS[provider]):
        raise Replayed(f"this {provider} request was received already (a replay)")
    return key


def release(redis: Redis, key: str) -> None:
    """Acting on the request failed: its provider's retry must be acted on."""
    redis.delete(key)
