"""The `mailto:` half of `List-Unsubscribe`: `unsubscribe+<send id>.<signature>@<domain>`, signed like
the VERP return path, so mail to it names the send it unsubscribes and nobody can forge one for
another send. The inbound server (campaigns.sending.inbound) turns such mail into the same
unsubscribe event as the one-click URL (`act_on`). No database: the event goes to the stream."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

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


def act_on(rt: Any, recipients: Sequence[str]) -> bool:
    """Mail to signed unsubscribe addresses: push each send's unsubscribe event (deduplicated with the
    one-click URL's); True when every recipient was one (the message needs nothing else)."""
    from campaigns.events.tracking import RawEvent, push

    sends = [parse(rt.settings.secret_key, r) for r in recipients]
    for send_id in sends:
        if send_id is not None:
            push(
                rt.redis,
                RawEvent("unsubscribe", send_id, method="POST", key=f"unsub:{send_id}", source="mailto"),
            )
    return bool(sends) and all(s is not None for s in sends)
