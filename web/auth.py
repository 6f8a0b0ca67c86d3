"""Sign-in: local accounts, argon2id passwords, server-side sessions, throttling."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from engine import people
from engine.models import LoginSession, Person
from web.extensions import db, limiter, login

bp = Blueprint("auth", __name__)

#: argon2id, RFC 9106's second recommended option; changing these rehashes on next sign-in
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
#: the test suite's hasher (DESKFLOW_PASSWORD_HASHING = "fast"): same algorithm, tiny cost
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
MIN_PASSWORD = 12
_DUMMIES: dict[int, str] = {}


def hasher() -> PasswordHasher:
    """The production hasher, unless the app was configured for fast (test) hashing."""
    try:
        fast = current_app.config.get("DESKFLOW_PASSWORD_HASHING") == "fast"
    except RuntimeError:  # outside an app: the CLI
        fast = False
    return FAST_HASHER if fast else HASHER


def hash_password(password: str, using: PasswordHasher | None = None) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return (using or hasher()).hash(password)


def check_password(person: Person | None, password: str) -> bool:
    """Constant work whether or not the person exists (no user enumeration by timing)."""
    current = hasher()
    dummy = _DUMMIES.setdefault(id(current), current.hash("deskflow-timing-equaliser"))
    stored = person.password_hash if person is not None and person.active else None
    try:
        current.verify(stored or dummy, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


class User:
    """The signed-in person, as Flask-Login sees them."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, person: Person, token: str) -> None:
        self.person, self.token = person, token
        self.id = person.id
        self.name = person.name

    def get_id(self) -> str:
        return self.token

    @cached_property
    def is_admin(self) -> bool:
        return people.is_admin(db.session(), self.id)

    @cached_property
    def groups(self) -> list[str]:
        return people.groups_of(db.session(), self.id)

    @cached_property
    def is_agent(self) -> bool:
        """Admin, or in a group some workflow sends tasks to (everyone is in `employees`)."""
        from web.views import catalog_queues

        return self.is_admin or not catalog_queues().isdisjoint(self.groups)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@login.user_loader
def load_user(token: str) -> User | None:
    row = db.session.get(LoginSession, _digest(token))
    if row is None:
        return None
    now = datetime.now(UTC)
    cfg = current_app.config
    if (now - row.last_seen_at > timedelta(seconds=cfg["DESKFLOW_IDLE_TIMEOUT"])
            or now - row.created_at > timedelta(seconds=cfg["PERMANENT_SESSION_LIFETIME"])):
        db.session.delete(row)
        db.session.commit()
        return None
    person = db.session.get(Person, row.person_id)
    if person is None or not person.active:
        return None
    if now - row.last_seen_at > timedelta(minutes=1):  # one write a minute at most
        row.last_seen_at = now
        db.session.commit()
    return User(person, token)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


def _account_key() -> str:
    return "account:" + (request.form.get("username") or "").strip().lower()[:64]


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("portal.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
@limiter.limit("10/minute", key_func=_account_key, methods=["POST"])
def sign_in() -> Any:
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username = form.username.data.strip().lower()
        person = db.session.get(Person, username)
        if check_password(person, form.password.data):
            assert person is not None
            if hasher().check_needs_rehash(person.password_hash or ""):
                person.password_hash = hasher().hash(form.password.data)
            token = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            db.session.add(LoginSession(id=_digest(token), person_id=person.id, created_at=now,
                                        last_seen_at=now,
                                        user_agent=(request.user_agent.string or "")[:200]))
            db.session.commit()
            session.clear()  # a new session on every sign-in
            login_user(User(person, token))
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong username or password.", "danger")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def sign_out() -> Any:
    db.session.execute(delete(LoginSession).where(LoginSession.id == _digest(current_user.token)))
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


def sign_out_everywhere(person_id: str) -> None:
    db.session.execute(delete(LoginSession).where(LoginSession.person_id == person_id))


def active_sessions(person_id: str) -> list[LoginSession]:
    return list(db.session.scalars(select(LoginSession).where(LoginSession.person_id == person_id)))
