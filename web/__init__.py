"""The Deskflow portal: `create_app()` builds the Flask app (gunicorn: 'web:create_app()')."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

#: settings read from the environment (SMTP settings are read by the worker: engine.delivery_config)
ENV_KEYS = ("DESKFLOW_DATABASE_URL", "DESKFLOW_CATALOG", "DESKFLOW_BASE_URL",
            "DESKFLOW_RATELIMIT_STORAGE", "DESKFLOW_SECURE_COOKIES", "DESKFLOW_IDLE_TIMEOUT",
            "DESKFLOW_TRUSTED_PROXIES", "DESKFLOW_ATTACHMENTS_DIR", "DESKFLOW_ATTACHMENT_MAX_FILE",
            "DESKFLOW_ATTACHMENT_MAX_RECORD", "DESKFLOW_METRICS", "DESKFLOW_REPORTS_MAX_AGE")


def create_app(config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the app: defaults, then DESKFLOW_* environment variables, then `config`."""
    from engine.db import absolute_sqlite, engine_options, normalize_url
    from engine.extras import require_ratelimit_storage
    from web import errors, extensions, ids, logs, security, state
    from web.bundled import bundled_catalog
    from web.config import Defaults, secret_key

    logs.configure_from_env(os.environ)  # under gunicorn; the CLI configures its own
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.from_object(Defaults)
    for key in ENV_KEYS:
        if key in os.environ:
            app.config[key] = _parse_env_value(os.environ[key])
    app.config.update(config or {})
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.setdefault("SECRET_KEY", None)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(app.instance_path)
    url = app.config.get("DESKFLOW_DATABASE_URL") or \
        f"sqlite:///{Path(app.instance_path) / 'deskflow.sqlite'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_url(absolute_sqlite(url))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**engine_options(url),
                                               **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
    secure = _truthy(app.config["DESKFLOW_SECURE_COOKIES"])
    app.config.update(SESSION_COOKIE_SECURE=secure, REMEMBER_COOKIE_SECURE=secure,
                      SESSION_COOKIE_NAME="__Host-deskflow" if secure else "deskflow")
    app.config["RATELIMIT_STORAGE_URI"] = app.config["DESKFLOW_RATELIMIT_STORAGE"]
    require_ratelimit_storage(app.config["RATELIMIT_STORAGE_URI"])
    # Redis down or unreachable: throttle in memory, per process, until it answers again
    # (Flask-Limiter checks now and then), never an error page; its errors come wrapped
    # (limits.errors.StorageError) and a blackholed Redis costs a second, not a hang.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"wrap_exceptions": True, **(
        {"socket_connect_timeout": 1, "socket_timeout": 1}
        if str(app.config["RATELIMIT_STORAGE_URI"]).startswith(("redis://", "rediss://")) else {})})
    proxies = app.config["DESKFLOW_TRUSTED_PROXIES"]
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        from catalog.errors import UsageError

        raise UsageError(f"DESKFLOW_TRUSTED_PROXIES must be a whole number, 0 or more (not {proxies})")
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # the client address (throttling, logs) from the last `proxies` X-Forwarded-For hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    from engine.report_snapshots import max_age

    app.config["DESKFLOW_REPORTS_MAX_AGE"] = max_age(app.config)  # a bad value fails at start
    catalog = Path(app.config.get("DESKFLOW_CATALOG") or bundled_catalog())

    extensions.db.init_app(app)
    extensions.csrf.init_app(app)
    extensions.login.init_app(app)
    extensions.login.login_view = "auth.sign_in"
    extensions.login.login_message = "Sign in to continue."
    extensions.login.session_protection = None  # sessions are server-side rows (web.auth)
    extensions.bootstrap.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=str(_migrations()))
    if _alembic_url not in extensions.migrate.configure_callbacks:
        extensions.migrate.configure(_alembic_url)
    extensions.limiter.init_app(app)
    with app.app_context():
        state.init_app(app, extensions.db.engine, catalog)
    logs.init_app(app)  # X-Request-ID in and out; log records and error pages carry it
    errors.init_app(app)
    security.init_app(app)
    ids.init_app(app)  # before the blueprints: their rules use <id:...>

    from web import (
        admin,
        api,
        approvals,
        attachments,
        auth,
        changes,
        cmdb,
        context,
        email_actions,
        health,
        knowledge,
        lifecycle,
        major,
        notifications,
        orders,
        portal,
        problems,
        records,
        reports,
        requests,
        satisfaction,
        tasks,
        tokens,
        urls,
        worklist,
    )

    context.init_app(app)
    urls.init_app(app)  # url_for in templates: each endpoint's URL built once per request
    for bp in (api.bp, auth.bp, changes.bp, portal.bp, requests.bp, approvals.bp, tasks.bp, admin.bp,
               knowledge.bp, notifications.bp, records.bp, cmdb.bp, lifecycle.bp, worklist.bp, problems.bp,
               major.bp, reports.bp, satisfaction.bp, email_actions.bp, tokens.bp, attachments.bp,
               orders.bp, health.bp):
        app.register_blueprint(bp)
    return app


def _parse_env_value(value: str) -> Any:
    """Environment values stay strings, except true/false and integers."""
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return int(value) if value.strip().isdigit() else value


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


def _alembic_url(config: Any) -> Any:
    """`flask db` runs engine/migrations on the app's database: hand Alembic its URL."""
    from flask import current_app

    url = str(current_app.config["SQLALCHEMY_DATABASE_URI"])
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _migrations() -> Path:
    from engine.migrate import MIGRATIONS

    return MIGRATIONS
