"""Which addresses a webhook may reach: public ones only, unless the admin setting
WEBHOOK_ALLOW_PRIVATE allows loopback, private and link-local targets (a webhook must not reach the
platform's own network, nor a cloud metadata service at 169.254.169.254).

When a webhook is saved, what can be known then is refused: addresses in every form a URL parser or
a resolver accepts (`127.0.0.1`, `2130706433`, `0x7f000001`, `0177.1`, `127.1`, `[::ffff:7f00:1]`),
`localhost` names, names of wildcard-DNS services that spell an address (`127.0.0.1.nip.io`,
`10-0-0-1.sslip.io`), and names that resolve to a refused address now (looked up with a bounded wait;
a name that does not resolve yet is checked again at delivery).

At delivery the name is resolved once (`resolve_target`), every address checked, and the connection
made to the checked address (`campaigns.ops.webhook_http`): no second lookup, so no DNS-rebinding
window between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlparse

from campaigns.runtime import current_settings

SAVE_LOOKUP_SECONDS = 2.0
# Services whose names resolve to the address written in them (a-b-c-d, a.b.c.d or 8 hex digits).
WILDCARD_DNS = ("nip.io", "sslip.io", "xip.io", "nip.direct", "traefik.me", "localtest.me", "lvh.me")
_EMBEDDED = re.compile(
    r"(?:^|[.-])(\d{1,3}[.-]\d{1,3}[.-]\d{1,3}[.-]\d{1,3})(?:$|[.-])|(?:^|[.-])([0-9a-f]{8})(?:$|\.)"
)


class TargetRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        ip = ip.sixtofour
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host spells, in any form a resolver takes: `2130706433`, `0x7f000001`, `127.1`."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and re.fullmatch(r"[0-9a-fA-FxX.]+", host) and re.match(r"[0-9]", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _wildcard_address(name: str) -> ipaddress.IPv4Address | None:
    for suffix in WILDCARD_DNS:
        if name == suffix or name.endswith("." + suffix):
            head = name[: -len(suffix)].rstrip(".")
            if suffix in ("localtest.me", "lvh.me"):
                return ipaddress.IPv4Address("127.0.0.1")
            for match in _EMBEDDED.finditer(head):
                dotted, hexed = match.groups()
                try:
                    if dotted:
                        return ipaddress.IPv4Address(re.sub("-", ".", dotted))
                    return ipaddress.IPv4Address(int(hexed, 16))
                except ValueError:
                    continue
            return None
    return None


def _refusal(host: str, address: str) -> str:
    return (
        f"{host} is a loopback, private or link-local address ({address}); "
        "an admin may allow those with WEBHOOK_ALLOW_PRIVATE"
    )


def _port(url: str) -> int:
    parsed = urlparse(url)
    try:
        return parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("the port is not a number from 1 to 65535") from exc


def _lookup(host: str, port: int, wait: float | None) -> list[str]:
    def run() -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return sorted({str(i[4][0]) for i in infos})

    if wait is None:
        return run()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=wait)


def resolve_target(url: str) -> list[str]:
    """The addresses to connect to for `url`, each checked; `TargetRefused` when one is refused or
    the name does not resolve. The caller connects to these, never resolving the name again."""
    host = (urlparse(url).hostname or "").strip("[]")
    port = _port(url)
    allow_private = current_settings().webhook_allow_private
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        name = host.lower().rstrip(".")
        if not allow_private and (name == "localhost" or name.endswith(".localhost")):
            raise TargetRefused(_refusal(host, "127.0.0.1"))
        try:
            addresses = _lookup(host, port, None)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"the host {host!r} does not resolve") from exc
    if not allow_private:
        for address in addresses:
            if not _public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise TargetRefused(_refusal(host, address))
    return addresses


def target_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why `url` may not receive webhooks, or None. With `resolve` (a delivery) the name must
    resolve to allowed addresses only; without (saving a webhook) a name is looked up with a bounded
    wait and refused only when it resolves to a refused address."""
    if resolve:
        try:
            resolve_target(url)
        except TargetRefused as exc:
            return str(exc)
        return None
    if current_settings().webhook_allow_private:
        return None
    host = (urlparse(url).hostname or "").strip("[]")
    try:
        port = _port(url)
    except TargetRefused as exc:
        return str(exc)
    name = host.lower().rstrip(".")
    spelled = literal_address(host) or _wildcard_address(name)
    if spelled is None and (name == "localhost" or name.endswith(".localhost")):
        spelled = ipaddress.IPv4Address("127.0.0.1")
    if spelled is not None:
        return None if _public(spelled) else _refusal(host, str(spelled))
    try:
        addresses = _lookup(host, port, SAVE_LOOKUP_SECONDS)
    except (OSError, UnicodeError, FutureTimeout):
        return None  # not resolvable now: checked again at every delivery
    private = [a for a in addresses if not _public(ipaddress.ip_address(a.split("%", 1)[0]))]
    return _refusal(host, private[0]) if private else None
