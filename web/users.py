"""The signed-in person as Flask-Login sees them, and bookkeeping writes put off until the
response went out; below the blueprints (the sign-in pages and the API's bearer tokens share
them; web/auth.py runs the put-off writes)."""

from __future__ import annotations

from functools import cached_property

from flask import g
from sqlalchemy import Executable

from engine import people
from engine.models import Person
from web.context import catalog_queues
from web.extensions import db


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
        return self.is_admin or not catalog_queues().isdisjoint(self.groups)



def write_after_response(statement: Executable) -> None:
    """Run `statement` once this request's response went out (see `write_or_skip`)."""
    g.setdefault("deskflow_later", []).append(statement)
