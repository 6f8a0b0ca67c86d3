"""Personal API tokens (engine.tokens) and idempotent ordering (engine.idempotency), on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from engine import tokens
from engine.errors import Conflict, InvalidInput, NotFound
from engine.idempotency import REUSED, fingerprint
from engine.models import ApiToken, IdempotencyKey, Person, Request
from tests.engine.test_concurrency import race


def test_a_token_is_stored_only_as_its_digest(sessions, service, clock):
    with sessions.begin() as s:
        row, secret = tokens.create_token(s, "alice", "  my   script ", clock())
        token_id = row.id
    with sessions() as s:
        row = s.get(ApiToken, token_id)
        assert (row.name, row.person_id) == ("my script", "alice")
        assert (row.last_used_at, row.revoked_at) == (None, None)
        assert row.digest == tokens.digest(secret) and secret.startswith(row.prefix) and len(row.prefix) == 10
        dump = " ".join(str(v) for v in s.execute(text("SELECT * FROM api_tokens")).one())
        assert secret not in dump
        assert tokens.token_and_owner(s, secret)[0].id == token_id
        assert tokens.token_and_owner(s, secret + "x") is None
        assert tokens.token_and_owner(s, secret[4:]) is None  # no prefix: not even looked up


def test_a_revoked_token_or_an_inactive_owner_finds_nobody(sessions, service, clock):
    with sessions.begin() as s:
        row, secret = tokens.create_token(s, "alice", "a", clock())
        _, bobs = tokens.create_token(s, "bob", "b", clock())
        token_id = row.id
    with sessions.begin() as s:
        with pytest.raises(NotFound, match="^no token 1$"):
            tokens.revoke_token(s, token_id, clock(), owner="bob")
        tokens.revoke_token(s, token_id, clock())
        s.get(Person, "bob").active = False
    with sessions.begin() as s:
        assert tokens.token_and_owner(s, secret) is None and tokens.token_and_owner(s, bobs) is None
        with pytest.raises(Conflict, match="^token 1 is already revoked$"):
            tokens.revoke_token(s, token_id, clock())


def test_token_names_and_owners_are_checked(sessions, service, clock):
    with sessions.begin() as s:
        with pytest.raises(InvalidInput) as caught:
            tokens.create_token(s, "alice", "x" * 81, clock())
        assert caught.value.fields == {"name": ["At most 80 characters."]}
        with pytest.raises(NotFound, match="^no active person ghost$"):
            tokens.create_token(s, "ghost", "x", clock())
        for i in range(tokens.MAX_TOKENS):
            tokens.create_token(s, "alice", f"t{i}", clock())
        with pytest.raises(InvalidInput, match="^alice already has 50 tokens"):
            tokens.create_token(s, "alice", "one more", clock())
        assert s.scalar(select(func.count()).select_from(ApiToken)) == tokens.MAX_TOKENS


def test_a_use_is_marked_at_most_once_a_minute(sessions, service, clock):
    with sessions.begin() as s:
        row, _ = tokens.create_token(s, "alice", "a", clock())
        assert tokens.needs_use_mark(row, clock())
        s.execute(tokens.mark_used(row.id, clock()))
        s.refresh(row)
        assert not tokens.needs_use_mark(row, clock() + timedelta(seconds=59))
        assert tokens.needs_use_mark(row, clock() + timedelta(minutes=1))


# ---------------------------------------------------------------- idempotency keys


def test_the_same_key_and_body_order_once(service, sessions, answers):
    body = {"item": "new-laptop", "answers": answers["new-laptop"]}
    first, new = service.submit_once("k1", body, "new-laptop", "alice", answers["new-laptop"])
    again, new_again = service.submit_once("k1", {"answers": answers["new-laptop"], "item": "new-laptop"},
                                           "new-laptop", "alice", answers["new-laptop"])
    assert (new, new_again, again.number) == (True, False, first.number)
    with pytest.raises(InvalidInput, match=f"^{REUSED}"):
        service.submit_once("k1", {**body, "x": 1}, "new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 1
        assert s.scalar(select(IdempotencyKey.fingerprint)) == fingerprint(body)


def test_a_race_on_one_key_orders_once(service, sessions, answers, db_url):
    threads = 12 if db_url.startswith("postgresql") else 6
    body = {"item": "new-laptop", "answers": answers["new-laptop"]}
    numbers: list[str] = []

    def order(_i: int) -> None:
        req, _ = service.submit_once("race", body, "new-laptop", "alice", answers["new-laptop"])
        numbers.append(str(req.number))

    outcomes = race(threads, order)
    assert set(outcomes) <= {"ok", "Conflict", "Unavailable"} and outcomes["ok"] >= 1, outcomes
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 1
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
    assert len(set(numbers)) == 1
    # whoever lost the race gets the first result when it tries again
    req, new = service.submit_once("race", body, "new-laptop", "alice", answers["new-laptop"])
    assert (req.number, new) == (numbers[0], False)
