"""Emails out: an outbox payload becomes a message with a stable Message-ID, sent by SMTP.

SMTP 4xx answers and connection trouble are retried; 5xx answers and a message that cannot be
built or rendered are final (`DeliveryFailed.permanent`).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from engine.delivery_config import DeliveryConfig
from engine.errors import DeliveryFailed
from engine.mail import render_email
from engine.outbox import message_digest

log = logging.getLogger("engine.delivery")

#: Sends one built email; raises smtplib/OSError exceptions like `send_smtp`.
Sender = Callable[[EmailMessage, DeliveryConfig], None]


def build_email(payload: Mapping[str, Any], key: str, config: DeliveryConfig,
                now: datetime) -> EmailMessage:
    """Build the message for an email payload, its Message-ID derived from the idempotency key."""
    if "template" in payload and "text" not in payload:
        try:
            subject, text, html = render_email(str(payload["template"]), payload.get("context") or {})
        except Exception as exc:  # noqa: BLE001 - a template that cannot render never will
            raise DeliveryFailed(f"cannot render the email {payload['template']}: {exc}",
                          permanent=True) from exc
        payload = {**payload, "subject": subject, "text": text, "html": html}
    message = EmailMessage()
    domain = parseaddr(config.mail_from)[1].rpartition("@")[2] or "deskflow.invalid"
    digest = message_digest(key)
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
        raise DeliveryFailed(f"cannot build the email: {exc}", permanent=True) from exc
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
        raise DeliveryFailed(f"SMTP refused every recipient: {detail}",
                      permanent=all(code >= 500 for code in codes)) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}",
                      permanent=exc.smtp_code >= 500) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {type(exc).__name__}: {exc}") from exc


def send_smtp(message: EmailMessage, config: DeliveryConfig) -> None:
    """Send one message through the configured SMTP server on a connection of its own."""
    smtp = _connect(config)
    try:
        _send(smtp, message)
    finally:
        _close(smtp)


class SmtpConnections:
    """Send through connections kept open between messages: one TLS handshake and login per thread.

    A connection is reused while the same settings ask for it and it has not sat idle longer than
    `idle` seconds; one the server dropped meanwhile (a restart, its idle timeout) is replaced once,
    transparently. A failed send closes its connection, so the next one starts clean. `send` is a
    `Sender` and raises exactly what `send_smtp` raises. Thread-safe; `close` at the end.
    """

    def __init__(self, idle: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle, self._clock = idle, clock
        self._lock = threading.Lock()
        self._free: list[tuple[DeliveryConfig, smtplib.SMTP, float]] = []
        self.opened = 0

    def send(self, message: EmailMessage, config: DeliveryConfig) -> None:
        """Send one message on a kept connection (or a new one)."""
        smtp = self._take(config)
        if smtp is not None:
            try:
                _send(smtp, message)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                _close(smtp)  # gone while we were away: once more, on a new connection
            except smtplib.SMTPResponseException as exc:
                _close(smtp)
                if exc.smtp_code != 421:  # 421: the server is closing this connection
                    raise
            except BaseException:
                _close(smtp)
                raise
            else:
                self._give(config, smtp)
                return
        smtp = _connect(config)
        with self._lock:
            self.opened += 1
        try:
            _send(smtp, message)
        except BaseException:
            _close(smtp)
            raise
        self._give(config, smtp)

    def close_idle(self) -> None:
        """Close the connections unused for longer than `idle` seconds."""
        now = self._clock()
        with self._lock:
            stale = [smtp for _, smtp, at in self._free if now - at > self.idle]
            self._free = [entry for entry in self._free if now - entry[2] <= self.idle]
        for smtp in stale:
            _close(smtp)

    def close(self) -> None:
        """Say goodbye on every kept connection."""
        with self._lock:
            free, self._free = self._free, []
        for _, smtp, _ in free:
            _close(smtp)

    def _take(self, config: DeliveryConfig) -> smtplib.SMTP | None:
        self.close_idle()
        with self._lock:
            for i, (cfg, smtp, _) in enumerate(self._free):
                if cfg == config:
                    del self._free[i]
                    return smtp
        return None

    def _give(self, config: DeliveryConfig, smtp: smtplib.SMTP) -> None:
        with self._lock:
            self._free.append((config, smtp, self._clock()))


def _connect(config: DeliveryConfig) -> smtplib.SMTP:
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
    except BaseException:
        smtp.close()
        raise
    return smtp


def _send(smtp: smtplib.SMTP, message: EmailMessage) -> None:
    refused = smtp.send_message(message)
    if refused:
        log.warning("SMTP refused some recipients of %s: %s", message["Message-ID"], refused)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass  # the messages are accepted; a rude goodbye changes nothing
    finally:
        smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
