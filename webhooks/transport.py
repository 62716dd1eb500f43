"""One webhook POST with SSRF care: resolve once, refuse non-public addresses, pin the connection to the address.

Only http(s). The name is resolved once and every address it gives must be public (unless
WEBHOOK_ALLOW_PRIVATE_NETWORKS); the connection goes to that address while the Host header and the
TLS server name (SNI and certificate check) stay the URL's name, so a second lookup cannot point it
elsewhere (DNS rebinding). Redirects are not followed (http.client never does); at most
WEBHOOK_RESPONSE_MAX_BYTES of the answer are read, within the timeout.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

SCHEMES = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The URL may not be called: not http(s), or its host is (or resolves to) a non-public address."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: bytes
    duration_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses the name resolves to (the one lookup of an attempt)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def address_allowed(address: str) -> bool:
    """Whether an IP may be called: a global unicast address, or anything when private networks are allowed."""
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def url_check(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of a URL that may be called as far as it says itself; else refuse.

    A literal address is judged here; a name is judged when it is resolved, at each attempt.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise AddressRefused("Only http:// and https:// URLs with a host.")
    if parts.username or parts.password:
        raise AddressRefused("No user or password in the URL.")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as exc:
        raise AddressRefused("Invalid port.") from exc
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return parts.scheme, parts.hostname, port
    if not address_allowed(parts.hostname):
        raise AddressRefused("Private, loopback and link-local addresses are refused.")
    return parts.scheme, parts.hostname, port


def pinned_address(url: str) -> tuple[str, str, int, str]:
    """Resolve the URL's host once; return (scheme, host, port, the address to connect to), or refuse."""
    scheme, host, port = url_check(url)
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise AddressRefused(f"{host} does not resolve.") from exc
    if not addresses:
        raise AddressRefused(f"{host} does not resolve.")
    refused = [a for a in addresses if not address_allowed(a)]
    if refused:
        raise AddressRefused(f"{host} resolves to a non-public address ({refused[0]}).")
    return scheme, host, port, addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`; never raise for the receiver's faults, say them in the answer."""
    started = time.monotonic()

    def answer(status: int | None, data: bytes = b"", error: str = "") -> Answer:
        return Answer(status, data, int((time.monotonic() - started) * 1000), error[:500])

    try:
        scheme, host, port, address = pinned_address(url)
    except AddressRefused as exc:
        return answer(None, error=f"Refused: {exc}")
    parts = urlsplit(url)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    limit, deadline = settings.WEBHOOK_RESPONSE_MAX_BYTES, started + 2 * timeout
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "LLMOps-Tracker-Webhooks/1"} | headers,
        )
        response = connection.getresponse()
        data = b""
        # A receiver trickling bytes cannot hold the worker past the deadline, nor send more than the limit.
        while len(data) < limit and time.monotonic() < deadline:
            chunk = response.read1(limit - len(data))
            if not chunk:
                break
            data += chunk
        return answer(response.status, data)
    except (OSError, http.client.HTTPException) as exc:
        return answer(None, error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
