"""Sign-in: local accounts (passwords: `web.passwords`), server-side sessions, throttling.

Writes go through the app's writer sessions (on SQLite: BEGIN IMMEDIATE, queued on the busy
timeout); `db.session` only reads. The last-seen stamp and the removal of an expired session
are written after the response went out, and skipped when the database is busy.

Throttling follows OWASP's Authentication Cheat Sheet: refused (429) per source address and per
account from one source; per account from everywhere, failed attempts are answered ever more
slowly instead of refused, so nobody can lock a person out by failing their password.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.wrappers import Response
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from limits import parse
from limits.errors import StorageError
from sqlalchemy import Executable, bindparam, delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from engine import people
from engine.db import is_busy, is_unreachable, writer
from engine.models import LoginSession, Membership, Person, PersonRole
from web.extensions import db, limiter, login
from web.passwords import check_password, hasher
from web.state import portal_state
from web.users import User, write_after_response

log = logging.getLogger("deskflow.web")

bp = Blueprint("auth", __name__)

#: sign-in attempts refused (429) beyond these: per source address, per account from one source
SOURCE_LIMIT = "30/minute"
ACCOUNT_SOURCE_LIMIT = "10/minute"
#: failed sign-ins on one account from every source, counted per window (the amount only bounds
#: the counter; nothing is refused on it)
ACCOUNT_FAILURES = parse("100000/15 minutes")
#: failures per window answered at once; each one after that waits twice as long, up to the cap
FREE_FAILURES = 20
DELAY_BASE, DELAY_CAP = 0.25, 2.0
#: how often a session's last-seen time is written, and how long that write waits for the lock
SEEN_EVERY = timedelta(minutes=1)
SEEN_BUSY_MS = 200
#: how a slowed-down failure waits (tests record it instead)
sleep = time.sleep


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: the session row's times and its person in one statement (every signed-in page runs it; built
#: once, as building it costs more than running it)
#: The person's roles and groups come along, joined by a character no id holds (engine.people
#: would read each in a statement of its own, and every page asks both).
SEPARATOR = "\x1f"
_SIGNED_IN = (select(LoginSession.created_at, LoginSession.last_seen_at, Person,
                     select(func.aggregate_strings(PersonRole.role_id, SEPARATOR))
                     .where(PersonRole.person_id == LoginSession.person_id).scalar_subquery(),
                     select(func.aggregate_strings(Membership.group_id, SEPARATOR))
                     .where(Membership.person_id == LoginSession.person_id).scalar_subquery())
              .join(Person, Person.id == LoginSession.person_id)
              .where(LoginSession.id == bindparam("digest")))


@login.user_loader
def load_user(token: str) -> User | None:
    """The session's person, reading only; what the session row needs is written later."""
    digest = _digest(token)
    row = db.session.execute(_SIGNED_IN, {"digest": digest}).first()
    if row is None:
        return None
    created_at, last_seen_at, person, roles, groups = row
    now = datetime.now(UTC)
    cfg = current_app.config
    if (now - last_seen_at > timedelta(seconds=cfg["DESKFLOW_IDLE_TIMEOUT"])
            or now - created_at > timedelta(seconds=cfg["PERMANENT_SESSION_LIFETIME"])):
        write_after_response(delete(LoginSession).where(LoginSession.id == digest))
        return None
    if not person.active:
        return None
    people.known_roles_and_groups(db.session(), person.id, roles.split(SEPARATOR) if roles else (),
                                  groups.split(SEPARATOR) if groups else ())
    if now - last_seen_at >= SEEN_EVERY:
        write_after_response(update(LoginSession).where(LoginSession.id == digest)
                             .values(last_seen_at=now))
    return User(person, token)


@bp.after_app_request
def _schedule_writes(response: Response) -> Response:
    statements = g.pop("deskflow_later", None)
    if statements:
        sessions = sessionmaker(bind=writer(db.engine, busy_ms=SEEN_BUSY_MS))
        response.call_on_close(partial(write_or_skip, sessions, statements))
    return response


def write_or_skip(sessions: sessionmaker[Session], statements: Sequence[Executable]) -> bool:
    """Run bookkeeping writes in one short transaction; skip them when the database is busy.

    They can wait: a missed last-seen stamp is written by the next page view, an expired
    session is refused anyway. So no page ever waits on the lock for them, nor fails.
    """
    try:
        with sessions.begin() as s:
            for statement in statements:
                s.execute(statement)
    except DBAPIError as exc:
        if is_unreachable(exc):  # a restart of the database: the next page view writes it
            log.warning("session bookkeeping skipped: the database cannot be reached")
        elif not is_busy(exc):
            log.exception("session bookkeeping failed")
        return False
    return True


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


def _account() -> str:
    return (request.form.get("username") or "").strip().lower()[:64]


def _account_source_key() -> str:
    return f"account:{_account()}|{get_remote_address()}"


def failure_delay(failures: int) -> float:
    """Seconds to hold the answer to a failed sign-in, the account's `failures`-th in the window."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(DELAY_CAP, DELAY_BASE * 2 ** (failures - FREE_FAILURES - 1))


def _slow_down_failure(account: str) -> None:
    """Count a failure on `account` from any source and wait as `failure_delay` says.

    Known and unknown accounts are counted and delayed alike; a right password is never delayed.
    """
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    # Flask-Limiter's strategy on its storage, or on memory while that storage is down
    strategy = limiter.limiter
    try:
        strategy.hit(ACCOUNT_FAILURES, "sign-in-failures", account)
        remaining = strategy.get_window_stats(ACCOUNT_FAILURES, "sign-in-failures", account).remaining
    except StorageError:
        log.warning("sign-in throttling: the rate-limit storage cannot be reached; this failed "
                    "sign-in is not slowed down")
        return
    delay = failure_delay(ACCOUNT_FAILURES.amount - remaining)
    if delay:
        sleep(delay)


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("portal.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(SOURCE_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_SOURCE_LIMIT, key_func=_account_source_key, methods=["POST"])
def sign_in() -> Any:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username = form.username.data.strip().lower()
        person = db.session.get(Person, username)
        if check_password(person, form.password.data):
            assert person is not None
            # Hashed before the write transaction: argon2 never runs while holding the lock.
            rehashed = hasher().hash(form.password.data) \
                if hasher().check_needs_rehash(person.password_hash or "") else None
            token = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            with portal_state().sessions.begin() as s:
                if rehashed:
                    s.execute(update(Person).where(Person.id == person.id)
                              .values(password_hash=rehashed))
                s.add(LoginSession(id=_digest(token), person_id=person.id, created_at=now,
                                   last_seen_at=now,
                                   user_agent=(request.user_agent.string or "")[:200]))
            session.clear()  # a new session on every sign-in
            login_user(User(person, token))
            return redirect(_safe_next(request.args.get("next")))
        _slow_down_failure(_account())
        flash("Wrong username or password.", "danger")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def sign_out() -> Any:
    with portal_state().sessions.begin() as s:
        s.execute(delete(LoginSession).where(LoginSession.id == _digest(current_user.token)))
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))

