"""/healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus.

No sign-in, no CSRF, no rate limit; no secret in any answer. /metrics is guarded by
DESKFLOW_METRICS instead (docs/operations.md, "Health and metrics").
"""

from __future__ import annotations

import hmac
from functools import cache
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from catalog.errors import UsageError
from engine.migrate import alembic_config
from web import metrics
from web.extensions import csrf, db, limiter

bp = Blueprint("health", __name__)
csrf.exempt(bp)
limiter.exempt(bp)

#: seconds the readiness query may take on PostgreSQL
READY_TIMEOUT_MS = 2000
LOCAL = frozenset({"127.0.0.1", "::1"})
METRICS_OFF = "Metrics are turned off (DESKFLOW_METRICS=off)."
METRICS_LOCAL = "Metrics are served to this host only (DESKFLOW_METRICS=local)."
METRICS_TOKEN = "Metrics need 'Authorization: Bearer <token>' with the metrics token."


def metrics_setting(value: Any) -> str:
    """The checked DESKFLOW_METRICS: off, local, or token:<secret> (UsageError otherwise)."""
    setting = str(value).strip() if value is not None else ""
    if setting in ("off", "local") or (setting.startswith("token:") and setting[len("token:"):].strip()):
        return setting
    raise UsageError(f"DESKFLOW_METRICS must be off, local or token:<secret> (not {setting!r})")


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)
    app.config["DESKFLOW_METRICS"] = metrics_setting(app.config.get("DESKFLOW_METRICS", "local"))
    portal = app.extensions["deskflow"]
    metrics.init_app(app, portal.readers or portal.sessions)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up: nothing else is checked."""
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> Response:
    """Ready to serve: the database answers, its schema is current, a catalog is loaded."""
    checks = {**database_checks(db.engine), "catalog": catalog_check()}
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return _no_store(response)


@bp.get("/metrics")
def metrics_page() -> Response:
    """Prometheus text format, for whoever DESKFLOW_METRICS lets in."""
    setting = current_app.config["DESKFLOW_METRICS"]
    if setting == "off":
        return _plain(404, METRICS_OFF)
    if setting == "local" and request.remote_addr not in LOCAL:
        return _plain(403, METRICS_LOCAL)
    if setting.startswith("token:"):
        wanted = setting[len("token:"):].strip().encode()
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), wanted):
            return _plain(403, METRICS_TOKEN)
    response = Response(metrics.metrics_of(current_app).scrape(), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return _no_store(response)


def database_checks(engine: Engine) -> dict[str, str]:
    """`database` (SELECT 1 answers) and `migrations` (the schema is at this code's head)."""
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {READY_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
            at = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        return {"database": f"unreachable: {_reason(exc, engine)}",
                "migrations": "unknown: the database did not answer"}
    return {"database": "ok", "migrations": migrations_check(at, code_head())}


def migrations_check(at: str | None, head: str | None) -> str:
    if at == head:
        return "ok"
    if at is None:
        return f"no schema: the database has no Deskflow schema, code at {head}"
    if at not in known_revisions():
        return f"ahead: database at {at}, which this code does not know (code at {head})"
    return f"behind: database at {at}, code at {head}"


def catalog_check() -> str:
    portal = current_app.extensions.get("deskflow")
    if portal is None or not portal.catalog.ok:
        return "not loaded"
    return "ok"


@cache
def code_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def known_revisions() -> frozenset[str]:
    return frozenset(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def _reason(exc: SQLAlchemyError, engine: Engine) -> str:
    """The driver's first line, with the database password (should a driver quote it) hidden."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else ""
    password = engine.url.password
    if password:
        reason = reason.replace(str(password), "***")
    return reason or type(exc).__name__


def _plain(status: int, message: str) -> Response:
    return _no_store(Response(message + "\n", status=status, mimetype="text/plain"))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
