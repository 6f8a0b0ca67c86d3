"""Signing in and out."""

from __future__ import annotations

from tests.web.conftest import PASSWORD


def test_pages_need_a_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2F"


def test_sign_in_and_out(client, auth):
    assert auth.login("alice").status_code == 302
    assert client.get("/").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password(client, auth):
    response = auth.login("alice", "not the password!")
    assert response.status_code == 401
    assert b"Wrong username or password." in response.data
    response = auth.login("nobody", PASSWORD)
    assert response.status_code == 401


def test_next_must_stay_on_this_site(client, post):
    response = post("/login?next=https://evil.example/", {"username": "alice", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_a_form_without_its_csrf_token_is_refused(client):
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert b"The form expired or did not come from this site." in response.data


def test_security_headers(client):
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_production_passwords_use_argon2id_with_fixed_parameters():
    from web.auth import HASHER, hash_password

    assert (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism) == (3, 65536, 1)
    assert hash_password("a long enough secret", using=HASHER).startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_passwords_need_twelve_characters():
    import pytest

    from web.auth import hash_password

    with pytest.raises(ValueError, match="at least 12 characters"):
        hash_password("short")


def test_a_weaker_stored_hash_is_upgraded_at_sign_in(app, client, auth):
    from sqlalchemy import select

    from engine.models import Person
    from web.extensions import db

    app.config["DESKFLOW_PASSWORD_HASHING"] = "standard"  # production hashing from now on
    auth.login("alice")
    with app.app_context():
        stored = db.session.scalar(select(Person.password_hash).where(Person.id == "alice"))
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_nul_characters_are_refused_before_anything_reads_them(client, post):
    assert client.get("/login?next=%00").status_code == 400
    response = post("/login", {"username": "ali\x00ce", "password": "x"})
    assert response.status_code == 400
    assert b"The request contains a NUL character." in response.data
