"""One webhook POST, connected to the address the target check approved.

The name is resolved once (`webhook_targets.resolve_target`); the connection goes to that address,
while TLS still sends the host name (SNI) and checks the certificate against it. Redirects are not
followed (a redirect could lead to a refused address): a 3xx is a failed delivery like any non-2xx.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
from email.message import Message
from urllib.parse import urlsplit

from campaigns.ops.webhook_targets import TargetRefused, resolve_target


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_pinned(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """The HTTP status of a 2xx answer; `urllib.error.HTTPError` for any other answer, `OSError`
    when no address answers, `TargetRefused` (a ValueError) for a refused target."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an http or https URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    last: OSError | None = None
    for address in resolve_target(url):
        connection = kind(parts.hostname, port, address, timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            status, reason = int(response.status), str(response.reason)
            response.read(65536)
        except ssl.SSLError:
            raise  # a certificate that does not match the name: no other address will do better
        except OSError as exc:
            last = exc
            continue
        finally:
            connection.close()
        if 200 <= status < 300:
            return status
        raise urllib.error.HTTPError(url, status, reason, Message(), None)
    raise last or OSError(f"no address of {parts.hostname} answered")
