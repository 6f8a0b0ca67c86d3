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
