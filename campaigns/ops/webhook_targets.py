"""Which addresses a webhook may reach: public ones only, unless the admin setting
WEBHOOK_ALLOW_PRIVATE allows loopback, private and link-local targets (a webhook must not reach the
platform's own network, nor a cloud metadata service at 169.254.169.254).

Checked when a webhook is saved (addresses and `localhost` names, no DNS on the request path) and
again before every delivery, after resolving the host name.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from campaigns.runtime import current_settings


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def target_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why `url` may not receive webhooks (a non-public address), or None. With `resolve` (before a
    delivery) a host name is resolved, and one that does not resolve is refused; without (when a
    webhook is saved: no DNS on the request path) only addresses and localhost names are checked."""
    if current_settings().webhook_allow_private:
        return None
    parsed = urlparse(url)
    host = (parsed.hostname or "").strip("[]")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return "the port is not a number from 1 to 65535"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            addresses = ["127.0.0.1"]
        elif not resolve:
            return None
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return f"the host {host!r} does not resolve"
            addresses = sorted({str(i[4][0]) for i in infos})
    private = [a for a in addresses if not _public(a)]
    if private:
        return (
            f"{host} is a loopback, private or link-local address ({private[0]}); "
            "an admin may allow those with WEBHOOK_ALLOW_PRIVATE"
        )
    return None
