"""Signing in and out."""

from __future__ import annotations

from collections import Counter

import pytest

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
    from web.passwords import HASHER, hash_password

    assert (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism) == (3, 65536, 1)
    assert hash_password("a long enough secret", using=HASHER).startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_passwords_need_twelve_characters():
    import pytest

    from web.passwords import hash_password

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


# ---------------------------------------------------------------- throttling


@pytest.fixture
def throttled(tmp_path, template_db):
    """Make an app that throttles sign-ins (and does not check CSRF): `throttled(**config)`."""
    import shutil

    from tests.web.conftest import ACME
    from web import create_app

    def make(**config):
        db_file = tmp_path / "throttled.sqlite"
        shutil.copy(template_db, db_file)
        return create_app({"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                           "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
                           "DESKFLOW_CATALOG": str(ACME), "DESKFLOW_SECURE_COOKIES": False,
                           "RATELIMIT_ENABLED": True, "DESKFLOW_PASSWORD_HASHING": "fast",
                           **config}, instance_path=str(tmp_path / "instance"))

    return make


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The delays slowed-down sign-ins would wait, recorded instead of slept."""
    import web.auth

    recorded: list[float] = []
    monkeypatch.setattr(web.auth, "sleep", recorded.append)
    return recorded


def sign_in_from(client, address: str, username: str, password: str, **headers: str) -> int:
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers).status_code


def test_a_hundred_wrong_passwords_from_one_address_are_refused_after_the_tenth(throttled, waits):
    client = throttled().test_client()
    answers = Counter(sign_in_from(client, "198.51.100.7", "alice", f"wrong guess {i}")
                      for i in range(100))
    assert answers == Counter({401: 10, 429: 90})
    response = client.post("/login", data={"username": "alice", "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 429
    assert "Too many attempts. Wait a minute and try again." in response.text
    assert waits == []


def test_one_address_may_try_thirty_accounts_a_minute(throttled, waits):
    client = throttled().test_client()
    answers = Counter(sign_in_from(client, "198.51.100.7", f"person{i}", "wrong guess")
                      for i in range(40))
    assert answers == Counter({401: 30, 429: 10})


def test_failing_alices_password_from_one_address_does_not_stop_her_signing_in_from_another(
        throttled, waits):
    app = throttled()
    attacker = app.test_client()
    attacks = Counter(sign_in_from(attacker, "203.0.113.66", "alice", f"guess {i}") for i in range(50))
    assert attacks == Counter({401: 10, 429: 40})
    assert sign_in_from(app.test_client(), "198.51.100.7", "alice", PASSWORD) == 302


def test_failures_from_many_addresses_slow_down_further_failures_but_never_the_right_password(
        throttled, waits):
    app = throttled()
    client = app.test_client()
    for i in range(24):
        assert sign_in_from(client, f"203.0.113.{i}", "alice", "wrong guess") == 401
    assert waits == [0.25, 0.5, 1.0, 2.0]
    assert sign_in_from(app.test_client(), "198.51.100.7", "alice", PASSWORD) == 302
    assert sign_in_from(client, "203.0.113.99", "alice", "wrong guess") == 401
    assert waits == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_unknown_and_known_accounts_are_slowed_down_alike(throttled, waits):
    client = throttled().test_client()
    for username in ("alice", "nobody"):
        for i in range(22):
            sign_in_from(client, f"203.0.113.{i}", username, "wrong guess")
    assert waits == [0.25, 0.5, 0.25, 0.5]


@pytest.mark.parametrize(("failures", "seconds"), [
    (1, 0.0), (20, 0.0), (21, 0.25), (22, 0.5), (23, 1.0), (24, 2.0), (25, 2.0), (1000, 2.0)])
def test_the_first_twenty_failures_are_answered_at_once_then_ever_slower_up_to_two_seconds(
        failures, seconds):
    from web.auth import failure_delay

    assert failure_delay(failures) == seconds


@pytest.mark.parametrize(("proxies", "eleventh"), [(0, 429), (1, 401)])
def test_x_forwarded_for_counts_only_behind_as_many_trusted_proxies_as_configured(
        throttled, waits, proxies, eleventh):
    client = throttled(DESKFLOW_TRUSTED_PROXIES=proxies).test_client()
    for i in range(10):
        assert sign_in_from(client, "10.0.0.2", "alice", f"guess {i}",
                            **{"X-Forwarded-For": "203.0.113.1"}) == 401
    assert sign_in_from(client, "10.0.0.2", "alice", "guess 10",
                        **{"X-Forwarded-For": "203.0.113.2"}) == eleventh


@pytest.mark.parametrize("proxies", ["two", -1])
def test_the_number_of_trusted_proxies_must_be_a_whole_number(throttled, proxies):
    from catalog.errors import UsageError

    with pytest.raises(UsageError) as caught:
        throttled(DESKFLOW_TRUSTED_PROXIES=proxies)
    assert str(caught.value) == \
        f"DESKFLOW_TRUSTED_PROXIES must be a whole number, 0 or more (not {proxies})"


def test_with_redis_unreachable_sign_ins_are_still_throttled_in_memory_and_never_fail(
        throttled, waits):
    from web.extensions import limiter

    # nothing listens on port 1: every call to the configured storage fails
    app = throttled(DESKFLOW_RATELIMIT_STORAGE="redis://127.0.0.1:1")
    client = app.test_client()
    try:
        answers = Counter(sign_in_from(client, "198.51.100.7", "alice", f"wrong guess {i}")
                          for i in range(12))
        assert answers == Counter({401: 10, 429: 2})
        for i in range(14):
            assert sign_in_from(client, f"203.0.113.{i}", "alice", "wrong guess") == 401
        assert waits == [0.25, 0.5, 1.0, 2.0]
        assert sign_in_from(app.test_client(), "192.0.2.1", "alice", PASSWORD) == 302
    finally:
        # the limiter is one object for every app of the process, and remembers the storage
        # it saw down (one app per process in production); later tests' apps start afresh
        limiter._storage_dead = False
