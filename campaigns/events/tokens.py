"""Signed tracking tokens (HMAC-SHA256 via itsdangerous, verified in constant time).

A token names what happened to which send, never a URL: `o.<send>` (open), `c.<send>.<link>[.<item>]`
(click), `u.<send>` (unsubscribe). Click destinations are looked up from the campaign's stored links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import Signer

KINDS = {"o": "open", "c": "click", "u": "unsubscribe", "v": "conversion"}
_CODES = {kind: code for code, kind in KINDS.items()}


@dataclass(frozen=True)
class TrackingRef:
    kind: str  # open | click | unsubscribe | conversion
    send_id: int
    link_id: int | None = None
    item_id: int | None = None


class TokenSigner:
    def __init__(self, secret_key: str) -> None:
        self._signer = Signer(secret_key, salt="mailramp.tracking", digest_method=hashlib.sha256, sep="~")
        # itsdangerous derives the HMAC key from (secret, salt) on every call; the send path signs
        # several links per email, so derive it once. The output is exactly Signer.sign's.
        # once more: the keyed HMAC state itself, copied per token instead of re-keyed.
        self._key = self._signer.derive_key()
        self._hmac = hmac.new(self._key, digestmod=hashlib.sha256)

    def _digest(self, value: str) -> str:
        mac = self._hmac.copy()
        mac.update(value.encode())
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def _sign(self, value: str) -> str:
        return f"{value}~{self._digest(value)}"

    def _unsign(self, token: str) -> str | None:
        """The signed value, or None; Signer.unsign's check without its per-call key derivation
        (the canonical unpadded urlsafe base64 of the MAC is the only form accepted)."""
        value, sep, mac = token.rpartition("~")
        if not sep or not mac.isascii():
            return None
        return value if hmac.compare_digest(mac, self._digest(value)) else None

    def sign(self, ref: TrackingRef) -> str:
        return self.sign_parts(ref.kind, ref.send_id, ref.link_id, ref.item_id)

    def sign_parts(
        self, kind: str, send_id: int, link_id: int | None = None, item_id: int | None = None
    ) -> str:
        """`sign(TrackingRef(...))` without building the reference (the send path signs several per
        email)."""
        if link_id is None:
            return self._sign(f"{_CODES[kind]}.{send_id}")
        if item_id is None:
            return self._sign(f"{_CODES[kind]}.{send_id}.{link_id}")
        return self._sign(f"{_CODES[kind]}.{send_id}.{link_id}.{item_id}")

    def verify(self, token: str, expected_kind: str | None = None) -> TrackingRef | None:
        """The reference if the signature holds (and the kind matches), else None."""
        payload = self._unsign(token)
        if payload is None:
            return None
        parts = payload.split(".")
        kind = KINDS.get(parts[0])
        if kind is None or len(parts) < 2 or (expected_kind and kind != expected_kind):
            return None
        try:
            numbers = [int(p) for p in parts[1:]]
        except ValueError:
            return None
        if kind == "click" and len(numbers) not in (2, 3):
            return None
        if kind != "click" and len(numbers) != 1:
            return None
        return TrackingRef(
            kind=kind,
            send_id=numbers[0],
            link_id=numbers[1] if len(numbers) > 1 else None,
            item_id=numbers[2] if len(numbers) > 2 else None,
        )
