"""How the worker reaches the SMTP server and webhooks, and how hard it tries."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
