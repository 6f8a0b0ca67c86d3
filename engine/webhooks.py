"""Webhooks out: signed POSTs, only to destinations Deskflow may call (the SSRF guard).

Destinations are checked at send time, after resolving DNS: private, loopback, link-local and
other non-global addresses, non-canonical IP spellings and schemes other than http(s) are
refused, and the connection goes to the address that was checked, so DNS cannot change
between check and connect. Redirects are never followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from engine.delivery_config import DeliveryConfig
from engine.errors import BlockedDestination, DeliveryFailed

Resolver = Callable[..., list[tuple[Any, ...]]]

RETRY_AFTER_MAX = 86_400.0
USER_AGENT = "Deskflow-Webhook/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Deskflow-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def send_webhook(payload: Mapping[str, Any], event: str, key: str, config: DeliveryConfig,
                 now: datetime, resolver: Resolver = socket.getaddrinfo) -> None:
    """POST a signed webhook; 2xx is delivered, everything else raises `DeliveryFailed`."""
    secret_env = str(payload.get("secret_env") or "")
    if not secret_env:
        raise DeliveryFailed("webhook secret: no environment variable is named for this webhook's secret",
                      permanent=True)
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise DeliveryFailed(f"webhook secret: environment variable {secret_env} is not set or empty",
                      permanent=True)
    url = str(payload["url"])
    target = resolve_webhook_target(url, resolver, allow_private=config.allow_private_webhooks)
    timestamp = int(now.timestamp())
    body = json.dumps({**payload.get("body", {}), "event": event, "idempotency_key": key,
                       "sent_at": now.astimezone(UTC).isoformat()},
                      separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": key,
               "X-Deskflow-Event": event, "X-Deskflow-Timestamp": str(timestamp),
               "X-Deskflow-Signature": sign(secret, timestamp, body), "User-Agent": USER_AGENT}
    status, reason, retry_after, location, excerpt = _post(target, body, headers,
                                                           config.webhook_timeout)
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise DeliveryFailed(f"HTTP {status}: redirect to {location or '?'} not followed", permanent=True)
    message = f"HTTP {status} {reason}".strip() + (f": {excerpt}" if excerpt else "")
    delay = _retry_after(retry_after, now) if status in (429, 503) else None
    permanent = 400 <= status < 500 and status not in (408, 429)
    raise DeliveryFailed(message, permanent=permanent, retry_after=delay)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a webhook goes: the checked address to connect to, and the URL parts to send."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def resolve_webhook_target(url: str, resolver: Resolver = socket.getaddrinfo, *,
                           allow_private: bool = False) -> WebhookTarget:
    """Resolve a webhook URL and check every address; raise `BlockedDestination` if refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedDestination(f"webhook url is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedDestination(f"webhook url scheme {scheme or '(none)'!r} is not http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedDestination("webhook url has no host")
    if any(c in url for c in "\r\n\t "):
        raise BlockedDestination("webhook url contains whitespace")
    port = port or (443 if scheme == "https" else 80)
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise DeliveryFailed(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise DeliveryFailed(f"cannot resolve {host}: no addresses")
    if not allow_private:
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                raise BlockedDestination(f"webhook host {host} resolves to {address}, {reason}; "
                                         "refused (set DESKFLOW_WEBHOOK_ALLOW_PRIVATE to allow)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme, host, port, str(addresses[0]), path)


def check_webhook_url(url: str, resolver: Resolver = socket.getaddrinfo, *,
                      allow_private: bool = False) -> str | None:
    """Return why a webhook URL is refused, or None; for checking a definition when it is saved."""
    try:
        resolve_webhook_target(url, resolver, allow_private=allow_private)
    except DeliveryFailed as exc:
        return str(exc)
    return None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return None
    # inet_aton accepts 2130706433, 0177.0.0.1, 0x7f.1 and 127.1: all spell 127.0.0.1.
    raise BlockedDestination(f"webhook host {host!r} is a non-canonical IP address spelling")


def blocked_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Say why Deskflow must not call `address`, or return "" if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and blocked_reason(embedded):
            return "an IPv6 address embedding a non-public IPv4 address"
        if address in ipaddress.ip_network("64:ff9b::/96") and \
                blocked_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)):
            return "a NAT64 address of a non-public IPv4 address"
    for test, label in ((address.is_unspecified, "the unspecified address"),
                        (address.is_loopback, "a loopback address"),
                        (address.is_link_local, "a link-local address"),
                        (address.is_multicast, "a multicast address"),
                        (address.is_private, "a private address"),
                        (address.is_reserved, "a reserved address"),
                        (not address.is_global, "not a public address")):
        if test:
            return label
    return ""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connect to the checked address while sending the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connect to the checked address; TLS verifies the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _post(target: WebhookTarget, body: bytes, headers: dict[str, str],
          timeout: float) -> tuple[int, str, str | None, str | None, str]:
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, target.address, timeout)
    # The socket timeout bounds each read; the watchdog bounds the whole exchange, so a
    # receiver that drips a byte at a time cannot keep a send going past its lease.
    fired = threading.Event()
    watchdog = threading.Timer(2 * timeout, _abort, (conn, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        excerpt = response.read(300).decode("utf-8", "replace")
        return (response.status, response.reason, response.getheader("Retry-After"),
                response.getheader("Location"), " ".join(excerpt.split())[:200])
    except (OSError, http.client.HTTPException) as exc:
        if fired.is_set():
            raise DeliveryFailed(f"no complete response within {2 * timeout:g}s") from exc
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    finally:
        watchdog.cancel()
        conn.close()


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(OSError, AttributeError):
        conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read in the sending thread


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):  # not isdigit(): it takes '²', which float() refuses
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)
