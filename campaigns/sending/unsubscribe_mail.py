"""The `mailto:` half of `List-Unsubscribe`: `unsubscribe+<send id>.<signature>@<domain>`, signed like
the VERP return path, so mail to it names the send it unsubscribes and nobody can forge one for
another send. The inbound server (campaigns.sending.inbound) turns such mail into the same
unsubscribe event as the one-click URL. Pure: no database."""

from __future__ import annotations

import hashlib
import hmac
import re

_ADDRESS = re.compile(r"^unsubscribe\+(\d{1,19})\.([0-9a-f]{16})@", re.IGNORECASE)


def _mac(secret: str, send_id: int) -> str:
    return hmac.new(secret.encode(), f"unsubscribe:{send_id}".encode(), hashlib.sha256).hexdigest()[:16]


def mailto_address(secret: str, send_id: int, domain: str) -> str:
    return f"unsubscribe+{send_id}.{_mac(secret, send_id)}@{domain}"


def parse(secret: str, address: str) -> int | None:
    """The send an unsubscribe address names, if its signature holds (constant-time compare)."""
    match = _ADDRESS.match(address.strip().strip("<>"))
    if match is None:
        return None
    send_id = int(match.group(1))
    return send_id if hmac.compare_digest(match.group(2).lower(), _mac(secret, send_id)) else None
