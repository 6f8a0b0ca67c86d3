"""Configuration: defaults, then DESKFLOW_* environment variables, then the caller's mapping."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from engine.attachment_store import MAX_FILE, MAX_RECORD, AttachmentStore


class Defaults:
    DESKFLOW_DATABASE_URL: str | None = None        # default: sqlite in the instance folder
    DESKFLOW_CATALOG: str | None = None             # default: the bundled acme demo
    DESKFLOW_BASE_URL = ""
    DESKFLOW_RATELIMIT_STORAGE = "memory://"
    DESKFLOW_TRUSTED_PROXIES = 0                    # reverse proxies whose X-Forwarded-For is believed
    DESKFLOW_METRICS = "local"                      # /metrics: off | local | token:<secret>
    DESKFLOW_SECURE_COOKIES = True                  # False only for plain-http demos
    DESKFLOW_SMTP_HOST = ""
    DESKFLOW_ATTACHMENTS_DIR: str | None = None     # default: attachments/ in the instance folder
    DESKFLOW_ATTACHMENT_MAX_FILE = MAX_FILE         # bytes per file
    DESKFLOW_ATTACHMENT_MAX_RECORD = MAX_RECORD     # bytes per record (live files)
    DESKFLOW_REPORTS_MAX_AGE = 300                  # seconds /reports serves a snapshot; 0 = live
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 12 * 3600          # absolute timeout, seconds
    DESKFLOW_IDLE_TIMEOUT = 2 * 3600                # idle timeout, seconds
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    BOOTSTRAP_SERVE_LOCAL = True                    # never a CDN
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}


def secret_key(instance_path: str) -> str:
    """The secret from DESKFLOW_SECRET_KEY, else one kept in the instance folder."""
    key = os.environ.get("DESKFLOW_SECRET_KEY")
    if key:
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def attachment_store(app: Flask) -> AttachmentStore:
    """Where the app keeps attachments (docs/attachments.md)."""
    return store_for(app.config, app.instance_path)


def store_for(config: Mapping[str, Any], instance_path: str) -> AttachmentStore:
    """Where attachments are kept: DESKFLOW_ATTACHMENTS_DIR, else the instance folder's
    attachments/ (beside the SQLite database and the secret key); a command outside the app
    passes `os.environ` and `Flask("web").instance_path`, as for the secret key."""
    from catalog.errors import UsageError

    limits = {}
    for key, default in (("DESKFLOW_ATTACHMENT_MAX_FILE", MAX_FILE),
                         ("DESKFLOW_ATTACHMENT_MAX_RECORD", MAX_RECORD)):
        value = config.get(key, default)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{key} must be a whole number of bytes, 1 or more (not {value})")
        limits[key] = value
    root = config.get("DESKFLOW_ATTACHMENTS_DIR") or Path(instance_path) / "attachments"
    return AttachmentStore(Path(root), limits["DESKFLOW_ATTACHMENT_MAX_FILE"],
                           limits["DESKFLOW_ATTACHMENT_MAX_RECORD"])
