"""Emails out: an outbox payload becomes a message with a stable Message-ID, sent by SMTP.

SMTP 4xx answers and connection trouble are retried; 5xx answers and a message that cannot be
built or rendered are final (`DeliveryFailed.permanent`).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
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
