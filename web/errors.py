"""One place that turns errors into pages: engine errors, HTTP errors, CSRF, the unexpected."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from engine.db import is_busy, is_unreachable
from engine.errors import EngineError, InvalidInput, Unavailable
from web.extensions import db
from web.logs import request_id

log = logging.getLogger("deskflow.web")

#: seconds a client should wait after a 503 (the database stayed locked through its busy timeout)
RETRY_AFTER = "2"
BUSY = "The service is busy right now. Wait a moment and try again."
UNREACHABLE = "The database cannot be reached just now. Please try again in a moment."

TITLES = {400: "Bad request", 401: "Sign in needed", 403: "Not allowed", 404: "Not found",
          405: "Not allowed here", 409: "Something changed", 410: "Link no longer valid",
          413: "Too large",
          422: "Check your input", 429: "Too many attempts", 500: "Something went wrong",
          503: "Busy"}


def _page(status: int, message: str, **extra: Any) -> Any:
    if request.path.startswith("/api/"):  # RFC 9457 problem details, never a page
        from web.api.base import problem

        return problem(status, message, extra.get("fields") or None, extra.get("headers"))
    extra.pop("headers", None)
    if request.accept_mimetypes.best == "application/json":
        body = {"title": TITLES.get(status, "Error"), "status": status, "detail": message, **extra,
                "request_id": request_id()}
        response = jsonify(body)
        response.status_code = status
        response.mimetype = "application/problem+json"
        return response
    try:
        return render_template("error.html", status=status, title=TITLES.get(status, "Error"),
                               message=message, reference=request_id(), **extra), status
    except DBAPIError as exc:
        # the nav reads the signed-in person and counts: the database went away after the
        # view answered; an error raised in an error handler would reach the client as a bare 500
        if not is_unreachable(exc):
            raise
        log.warning("database unreachable while rendering the %s page on %s %s: %s", status,
                    request.method, request.path, _reason(exc))
        with suppress(SQLAlchemyError):
            db.session.rollback()
        return _page_without_database(status, TITLES.get(status, "Error"), message)


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def end_session(exc: BaseException | None) -> None:
        """End the session as Flask-SQLAlchemy does (this runs first), tolerating a connection
        that died after the view answered: its transaction died with it, and the answer stands.

        An error raised here escapes every error handler, and gunicorn answers it with a 500.
        """
        try:
            db.session.remove()
        except DBAPIError as err:
            if not is_unreachable(err):
                raise
            log.warning("database unreachable when the session ended: %s", _reason(err))
            db.session.remove()  # SQLAlchemy invalidated the connection: nothing is left to end

    @app.errorhandler(EngineError)
    def engine_error(exc: EngineError) -> Any:
        headers = {"Retry-After": RETRY_AFTER} if isinstance(exc, Unavailable) else {}
        fields = exc.fields if isinstance(exc, InvalidInput) else {}
        page = _page(exc.status, getattr(exc, "message", None) or str(exc), fields=fields)
        if headers:
            response = app.make_response(page)
            response.headers.update(headers)
            return response
        return page

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return _page(400, "The form expired or did not come from this site. Reload the page and "
                          "try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        messages = {404: "There is nothing here, or nothing you may see.",
                    403: "You may not do this.", 429: "Too many attempts. Wait a minute and try again.",
                    413: "What you sent is too large.", 405: "This method is not allowed here."}
        # 405 names the methods that work (Allow), 429 when to come back (Retry-After)
        kept = {k: v for k, v in exc.get_headers() if k in ("Allow", "Retry-After")}
        return _page(status, messages.get(status, exc.description or TITLES.get(status, "")),
                     headers=kept)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _page(500, "Something went wrong on our side. It has been logged; please try again.")

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> Any:
        """SQLite stayed locked through the whole busy timeout, or the database cannot be
        reached (a PostgreSQL restart): 503 with Retry-After, never 500."""
        if is_unreachable(exc):
            return database_unreachable(exc)
        if not is_busy(exc):
            return unexpected(exc)
        log.warning("database busy on %s %s", request.method, request.path)
        db.session.rollback()  # the error page reads (nav counts) in a fresh transaction
        response = app.make_response(_page(503, BUSY))
        response.headers["Retry-After"] = RETRY_AFTER
        return response

    def database_unreachable(exc: DBAPIError) -> Any:
        log.warning("database unreachable on %s %s: %s", request.method, request.path,
                    _reason(exc))
        # the connection is gone (SQLAlchemy invalidated it): the next request checks out a fresh
        # one, pre-pinged on PostgreSQL
        with suppress(SQLAlchemyError):
            db.session.rollback()
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            page = _page(503, UNREACHABLE, headers={"Retry-After": RETRY_AFTER})
        else:
            page = _page_without_database(503, "Database unavailable", UNREACHABLE)
        response = app.make_response(page)
        response.headers["Retry-After"] = RETRY_AFTER
        return response


def _page_without_database(status: int, title: str, message: str) -> tuple[str, int]:
    """An HTML error page that reads nothing from the database.

    Rendered by Jinja directly: `render_template` runs the context processors, and Flask-Login's
    loads the signed-in person (a query) before any template line runs; error.html's nav reads
    the viewer and counts too.
    """
    portal = current_app.extensions.get("deskflow")
    site_name = portal.catalog.settings.name if portal is not None else "Deskflow"
    html = current_app.jinja_env.get_template("unavailable.html").render(
        status=status, title=title, message=message, reference=request_id(), site_name=site_name)
    return html, status


def _reason(exc: DBAPIError) -> str:
    """The driver's first line and class, for the log: no traceback, no password."""
    text = str(exc.orig).strip()
    line = text.splitlines()[0] if text else ""
    password = db.engine.url.password
    if password:
        line = line.replace(str(password), "***")
    return f"{type(exc.orig).__name__}: {line}" if line else type(exc.orig).__name__
