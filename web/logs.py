"""Log records as text lines for people or JSON lines for tools, each with the request id in a request.

`configure` sets up the root logger once for `deskflow serve`, `demo` and `worker` (and for an
app built under gunicorn when DESKFLOW_LOG_FORMAT is set). `init_app` gives every HTTP request an
id: a sane incoming `X-Request-ID`, else a new one; it is returned in the same header, added to
every log record written during the request, and shown on error pages.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from catalog.errors import UsageError

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HEADER = "X-Request-ID"
#: an incoming id we pass on as it is; anything else is replaced (it ends up in logs and pages)
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_configured = False


def request_id() -> str | None:
    """Return the current request's id (made on first use), or None outside a request."""
    if not has_request_context():
        return None
    rid: str | None = g.get("request_id")
    if rid is None:
        incoming = request.headers.get(HEADER, "")
        rid = incoming if SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_id = rid
    return rid


class RequestIdFilter(logging.Filter):
    """Add `request_id` to records written inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id()
        if rid is not None:
            record.request_id = rid
        return True


class StderrHandler(logging.StreamHandler):
    """Write to whatever `sys.stderr` is now (a test runner or a daemon may have replaced it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _utc(record: logging.LogRecord, msec: bool) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z" if msec else f"{stamp}Z"


class TextFormatter(logging.Formatter):
    """`2026-11-27T23:40:01Z INFO engine.worker [request-id] message`, the id only in a request."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        line = f"{_utc(record, False)} {record.levelname} {record.name} " \
               f"{f'[{rid}] ' if rid else ''}{record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return _utc(record, True)

    return Formatter("{asctime}{levelname}{name}{message}", style="{",
                     rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


#: libraries whose INFO lines are noise: held at WARNING
QUIET = ("alembic", "transitions")


def configure(fmt: str, level: str = "INFO") -> None:
    """Send every log record to stderr as `fmt` ('text' or 'json'), from `level` up."""
    global _configured
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise UsageError(f"log format must be one of {', '.join(FORMATS)} (not {fmt})")
    if level.upper() not in LEVELS:
        raise UsageError(f"log level must be one of {', '.join(LEVELS)} (not {level})")
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": _json_formatter}},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": fmt, "filters": ["request_id"]}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # one line per migration step is noise in `deskflow demo`; `deskflow db upgrade` reports
        # and `transitions` says INFO twice for every state change of every request
        "loggers": {name: {"level": "WARNING"} for name in QUIET},
    })
    logging.captureWarnings(True)  # warnings get a time and a level too
    _configured = True


def configure_from_env(environ: Mapping[str, str]) -> None:
    """Configure from DESKFLOW_LOG_FORMAT/_LEVEL when set and nothing configured logging yet.

    For an app built by gunicorn (`web:create_app()`); the CLI commands configure it themselves.
    """
    fmt = environ.get("DESKFLOW_LOG_FORMAT", "").strip().lower()
    if fmt and not _configured:
        configure(fmt, environ.get("DESKFLOW_LOG_LEVEL", "INFO").strip() or "INFO")


def init_app(app: Flask) -> None:
    """Give every request an id and return it in the X-Request-ID header."""
    @app.before_request
    def assign_id() -> None:
        request_id()

    @app.after_request
    def return_id(response: Response) -> Response:
        rid = request_id()
        if rid:
            response.headers[HEADER] = rid
        return response

