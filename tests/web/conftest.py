"""Web fixtures after Flask's tutorial: app, client, auth — on a copy of a ready database.

The CLI `runner` is tests/conftest.py's.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from engine.db import make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import upgrade
from engine.models import Person
from tests.acme import ACME
from web import create_app
from web.passwords import FAST_HASHER, hash_password

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, acme) -> Path:
    """A migrated database with acme's directory; every person's password is PASSWORD."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    hashed = hash_password(PASSWORD, using=FAST_HASHER)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, acme.directory)
        s.execute(update(Person).values(password_hash=hashed))
    engine.dispose()
    return path


def make_app(directory: Path, template_db: Path, catalog: Path = ACME) -> Flask:
    """The app on a copy of the ready template database (acme directory, PASSWORD for everyone),
    serving `catalog` (acme, or a changed copy of it)."""
    directory.mkdir(parents=True, exist_ok=True)
    db_file = directory / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test",
        "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
        "DESKFLOW_CATALOG": str(catalog),
        "DESKFLOW_SECURE_COOKIES": False,
        "RATELIMIT_ENABLED": False,
        "DESKFLOW_PASSWORD_HASHING": "fast",
        "DESKFLOW_ATTACHMENTS_DIR": str(directory / "attachments"),
    })
    app.instance_path = str(directory / "instance")
    return app


@pytest.fixture
def app(tmp_path, template_db) -> Flask:
    return make_app(tmp_path, template_db)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def service(app):
    return app.extensions["deskflow"].service


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Auth:
    def __init__(self, client) -> None:
        self.client = client

    def login(self, username: str = "alice", password: str = PASSWORD):
        page = self.client.get("/login")
        data = {"username": username, "password": password}
        if b'name="csrf_token"' in page.data:
            data["csrf_token"] = csrf_token(page.get_data(as_text=True))
        return self.client.post("/login", data=data)

    def logout(self):
        page = self.client.get("/")
        data = {}
        if b'name="csrf_token"' in page.data:
            data["csrf_token"] = csrf_token(page.get_data(as_text=True))
        return self.client.post("/logout", data=data)


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture
def post(client):
    """POST a form as a browser would: with the CSRF token of a page loaded first (CSRF is on)."""

    def send(url: str, data: dict | None = None, page: str = "/login", **kw):
        html = client.get(page).get_data(as_text=True)
        return client.post(url, data={"csrf_token": csrf_token(html), **(data or {})}, **kw)

    return send


@pytest.fixture
def people(app):
    with app.app_context():
        from web.extensions import db

        return {p.id: p.name for p in db.session.scalars(select(Person))}
