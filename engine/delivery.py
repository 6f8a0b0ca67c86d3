"""Deliver outbox rows: claim them, send them outside any transaction, record the outcome.

A delivery is at least once. `claim` marks due rows ``sending`` with a lease
(``locked_until``) and counts the attempt in one short transaction; the email or webhook
goes out with no transaction open; a second transaction records delivered, retry (with
exponential backoff and jitter) or dead. A worker killed mid-send leaves its rows
``sending``: once their lease runs out any worker claims them again, so a receiver may
see a message twice, always with the same idempotency key (``Idempotency-Key`` header,
``Message-ID``). The outcome is written only while the lease read before sending is
still the row's, so a worker that overran its lease cannot overwrite a newer claim.

Several workers may run at once against PostgreSQL, where `claim` uses
``FOR UPDATE SKIP LOCKED``. SQLite serialises writers (``BEGIN IMMEDIATE``), so claims
never overlap there either, but SQLite is a single-host database: run one worker.

Webhook destinations are checked at send time, after resolving DNS: private, loopback,
link-local and other non-global addresses, non-canonical IP spellings and schemes other
than http(s) are refused, and the connection goes to the address that was checked, so
DNS cannot change between check and connect. Redirects are never followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.models import OutboxMessage

log = logging.getLogger(__name__)

Resolver = Callable[..., list[tuple[Any, ...]]]
Clock = Callable[[], datetime]
#: Sends one built email; raises smtplib/OSError exceptions like `send_smtp`.
Sender = Callable[[EmailMessage, "DeliveryConfig"], None]

DELIVERED, RETRY, DEAD, SKIPPED = "delivered", "retry", "dead", "skipped"
RETRY_AFTER_MAX = 86_400.0
ERROR_MAX = 2000
USER_AGENT = "Deskflow-Webhook/1"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How to reach the SMTP server, and how hard to try. Durations are in seconds."""

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    mail_from: str = "deskflow@localhost"
    smtp_timeout: float = 30.0
    webhook_timeout: float = 10.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_factor: float = 2.0
    backoff_cap: float = 3600.0
    jitter: float = 0.2
    lease: float = 60.0
    concurrency: int = 4
    allow_private_webhooks: bool = False

    def __post_init__(self) -> None:
        if self.lease <= max(2 * self.webhook_timeout, self.smtp_timeout):
            raise ValueError("lease must be longer than the SMTP timeout and twice the webhook "
                             "timeout, or a slow send could be claimed again while in flight")
        if not 0 <= self.jitter < 1 or self.max_attempts < 1 or self.concurrency < 1:
            raise ValueError("jitter must be in [0, 1); max_attempts and concurrency at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> DeliveryConfig:
        """Read DESKFLOW_SMTP_*, DESKFLOW_MAIL_FROM and DESKFLOW_WEBHOOK_ALLOW_PRIVATE."""
        env = os.environ if environ is None else environ

        def flag(name: str) -> bool:
            return env.get(name, "").strip().lower() in _TRUE

        use_ssl, starttls = flag("DESKFLOW_SMTP_SSL"), flag("DESKFLOW_SMTP_STARTTLS")
        default_port = 465 if use_ssl else 587 if starttls else 25
        values: dict[str, Any] = {
            "smtp_host": env.get("DESKFLOW_SMTP_HOST", "localhost"),
            "smtp_port": int(env.get("DESKFLOW_SMTP_PORT") or default_port),
            "smtp_user": env.get("DESKFLOW_SMTP_USER", ""),
            "smtp_password": env.get("DESKFLOW_SMTP_PASSWORD", ""),
            "smtp_starttls": starttls,
            "smtp_ssl": use_ssl,
            "mail_from": env.get("DESKFLOW_MAIL_FROM", "deskflow@localhost"),
            "allow_private_webhooks": flag("DESKFLOW_WEBHOOK_ALLOW_PRIVATE"),
        }
        return cls(**{**values, **overrides})

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Return the seconds to wait after failed attempt number `attempt` (1-based), jittered."""
        delay = min(self.backoff_cap, self.backoff_base * self.backoff_factor ** (attempt - 1))
        return delay * (1 + self.jitter * (2 * rng() - 1))


class Failure(Exception):
    """A send failed; `permanent` sends the message to the dead letters at once."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent, self.retry_after = permanent, retry_after


class BlockedDestination(Failure):
    """A webhook URL points somewhere Deskflow must not call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    kind: str
    event: str
    key: str
    payload: dict[str, Any]
    attempts: int
    locked_until: datetime


# ---------------------------------------------------------------- claiming

def claim(sessionmaker: sessionmaker[Session], now: datetime, limit: int = 50, *,
          lease: float = 60.0) -> list[int]:
    """Mark up to `limit` due messages as sending under a lease, count the attempt, commit."""
    due = or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
              and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < now))
    with sessionmaker() as session, session.begin():
        stmt = (select(OutboxMessage).where(due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(session.scalars(stmt))
        for row in rows:
            if row.status == "sending":
                log.warning("outbox %s: lease ran out mid-send; claiming it again", row.id)
            row.status = "sending"
            row.locked_until = now + timedelta(seconds=lease)
            # Counted at claim time, so a message that kills its worker still runs out of tries.
            row.attempts += 1
        return [row.id for row in rows]


def deliver_due(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock,
                limit: int = 50, *, resolver: Resolver = socket.getaddrinfo,
                sender: Sender | None = None) -> dict[str, int]:
    """Claim due messages in batches of `config.concurrency`, deliver them, count the outcomes."""
    counts = {"claimed": 0, DELIVERED: 0, RETRY: 0, DEAD: 0, SKIPPED: 0, "error": 0}
    with ThreadPoolExecutor(max_workers=config.concurrency,
                            thread_name_prefix="deskflow-delivery") as pool:
        while counts["claimed"] < limit:
            batch = min(config.concurrency, limit - counts["claimed"])
            # Claim no more than we send at once, so no lease runs out while queued here.
            ids = claim(sessionmaker, now_fn(), batch, lease=config.lease)
            counts["claimed"] += len(ids)
            futures = [pool.submit(deliver_one, sessionmaker, i, config, now_fn,
                                   resolver=resolver, sender=sender) for i in ids]
            for message_id, future in zip(ids, futures, strict=True):
                try:
                    counts[future.result()] += 1
                except Exception:
                    # The row stays `sending`; its lease runs out and it is tried again.
                    log.exception("outbox %s: delivery crashed", message_id)
                    counts["error"] += 1
            if len(ids) < batch:
                break
    return counts


# ---------------------------------------------------------------- one message

def deliver_one(sessionmaker: sessionmaker[Session], message_id: int, config: DeliveryConfig,
                now_fn: Clock, resolver: Resolver = socket.getaddrinfo,
                sender: Sender | None = None) -> str:
    """Send one claimed message outside any transaction, then record the outcome.

    Returns ``delivered``, ``retry``, ``dead`` or ``skipped`` (not ours to send any more).
    `sender` replaces `send_smtp` for email.
    """
    with sessionmaker() as session, session.begin():
        row = session.get(OutboxMessage, message_id)
        if row is None or row.status != "sending" or row.locked_until is None:
            return SKIPPED
        if row.locked_until <= now_fn():
            return SKIPPED  # overran the lease; whoever claims it next sends it
        claimed = _Claimed(row.id, row.kind, row.event, row.idempotency_key, dict(row.payload),
                           row.attempts, row.locked_until)
    if claimed.attempts > config.max_attempts:
        return _record(sessionmaker, claimed, config, now_fn(),
                       Failure(f"gave up after {claimed.attempts - 1} attempts (the last one never "
                               "finished: the worker stopped mid-send)", permanent=True))
    failure: Failure | None = None
    try:
        if claimed.kind == "email":
            send_email(claimed.payload, claimed.key, config, now_fn(), sender or send_smtp)
        elif claimed.kind == "webhook":
            send_webhook(claimed.payload, claimed.event, claimed.key, config, now_fn(), resolver)
        else:
            raise Failure(f"unknown outbox kind {claimed.kind!r}", permanent=True)
    except Failure as exc:
        failure = exc
    except Exception as exc:
        # A bug, not the receiver's answer: keep it visible in last_error and let backoff apply.
        log.exception("outbox %s: unexpected error while sending", claimed.id)
        failure = Failure(f"internal error: {type(exc).__name__}: {exc}")
    return _record(sessionmaker, claimed, config, now_fn(), failure)


def _record(sessionmaker: sessionmaker[Session], claimed: _Claimed, config: DeliveryConfig,
            now: datetime, failure: Failure | None) -> str:
    values: dict[str, Any]
    if failure is None:
        outcome = DELIVERED
        values = {"status": "delivered", "delivered_at": now, "locked_until": None, "last_error": ""}
    elif failure.permanent or claimed.attempts >= config.max_attempts:
        outcome = DEAD
        error = str(failure) if failure.permanent else \
            f"attempt {claimed.attempts} of {config.max_attempts}: {failure}"
        values = {"status": "dead", "locked_until": None, "last_error": error[:ERROR_MAX]}
    else:
        outcome = RETRY
        delay = failure.retry_after if failure.retry_after is not None else \
            config.backoff(claimed.attempts)
        values = {"status": "pending", "locked_until": None,
                  "next_attempt_at": now + timedelta(seconds=delay),
                  "last_error": f"attempt {claimed.attempts}: {failure}"[:ERROR_MAX]}
    # Fenced on the lease we sent under: if it ran out and another worker claimed the row,
    # that worker owns the outcome now.
    stmt = (update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id, OutboxMessage.status == "sending",
                   OutboxMessage.locked_until == claimed.locked_until)
            .values(**values).execution_options(synchronize_session=False))
    with sessionmaker() as session, session.begin():
        if cast("CursorResult[Any]", session.execute(stmt)).rowcount != 1:
            log.warning("outbox %s: lease lost before recording %s", claimed.id, outcome)
            return SKIPPED
    level = logging.INFO if outcome == DELIVERED else logging.WARNING
    log.log(level, "outbox %s %s %s: %s%s", claimed.id, claimed.kind, claimed.event, outcome,
            f" ({values['last_error']})" if failure else "")
    return outcome


# ---------------------------------------------------------------- email

def build_email(payload: Mapping[str, Any], key: str, config: DeliveryConfig,
                now: datetime) -> EmailMessage:
    """Build the message for an email payload, its Message-ID derived from the idempotency key."""
    if "template" in payload and "text" not in payload:
        from engine.mail import render_email

        try:
            subject, text, html = render_email(str(payload["template"]), payload.get("context") or {})
        except Exception as exc:  # noqa: BLE001 - a template that cannot render never will
            raise Failure(f"cannot render the email {payload['template']}: {exc}",
                          permanent=True) from exc
        payload = {**payload, "subject": subject, "text": text, "html": html}
    message = EmailMessage()
    domain = parseaddr(config.mail_from)[1].rpartition("@")[2] or "deskflow.invalid"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    try:
        message["From"] = config.mail_from
        message["To"] = ", ".join(payload["to"])
        message["Subject"] = " ".join(str(payload.get("subject", "")).split())
        message["Date"] = format_datetime(now.astimezone(UTC))
        message["Message-ID"] = f"<{digest}.deskflow@{domain}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message["X-Deskflow-Idempotency-Key"] = key
        message.set_content(str(payload.get("text", "")))
        if payload.get("html"):
            message.add_alternative(str(payload["html"]), subtype="html")
    except (KeyError, TypeError, ValueError, MessageError) as exc:
        raise Failure(f"cannot build the email: {exc}", permanent=True) from exc
    return message


def send_email(payload: Mapping[str, Any], key: str, config: DeliveryConfig, now: datetime,
               sender: Sender) -> None:
    """Send an email payload; SMTP 4xx and connection trouble retry, 5xx is final."""
    message = build_email(payload, key, config, now)
    try:
        sender(message, config)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        raise Failure(f"SMTP refused every recipient: {detail}",
                      permanent=all(code >= 500 for code in codes)) from exc
    except smtplib.SMTPResponseException as exc:
        raise Failure(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}",
                      permanent=exc.smtp_code >= 500) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise Failure(f"SMTP {type(exc).__name__}: {exc}") from exc


def send_smtp(message: EmailMessage, config: DeliveryConfig) -> None:
    """Send one message through the configured SMTP server."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.smtp_ssl:
        smtp = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout,
                                context=context)
    else:
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout)
    try:
        if config.smtp_starttls and not config.smtp_ssl:
            smtp.starttls(context=context)
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password)
        refused = smtp.send_message(message)
        if refused:
            log.warning("SMTP refused some recipients of %s: %s", message["Message-ID"], refused)
        try:
            smtp.quit()
        except smtplib.SMTPException:
            pass  # the message is accepted; a rude goodbye changes nothing
    finally:
        smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- webhooks

def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Deskflow-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def send_webhook(payload: Mapping[str, Any], event: str, key: str, config: DeliveryConfig,
                 now: datetime, resolver: Resolver = socket.getaddrinfo) -> None:
    """POST a signed webhook; 2xx is delivered, everything else raises `Failure`."""
    secret_env = str(payload.get("secret_env") or "")
    if not secret_env:
        raise Failure("webhook secret: no environment variable is named for this webhook's secret",
                      permanent=True)
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise Failure(f"webhook secret: environment variable {secret_env} is not set or empty",
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
        raise Failure(f"HTTP {status}: redirect to {location or '?'} not followed", permanent=True)
    message = f"HTTP {status} {reason}".strip() + (f": {excerpt}" if excerpt else "")
    delay = _retry_after(retry_after, now) if status in (429, 503) else None
    permanent = 400 <= status < 500 and status not in (408, 429)
    raise Failure(message, permanent=permanent, retry_after=delay)


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
            raise Failure(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise Failure(f"cannot resolve {host}: no addresses")
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
    except Failure as exc:
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
            raise Failure(f"no complete response within {2 * timeout:g}s") from exc
        raise Failure(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
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

