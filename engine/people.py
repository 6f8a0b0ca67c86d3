"""Who is who at run time: the directory as stored in the database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from engine.errors import NotFound
from engine.memo import remember
from engine.models import Delegation, Group, LoginSession, Membership, Person, PersonRole

ADMIN_ROLE = "admin"
#: the key of `Session.info` under which a unit of work keeps the people it read
HELD_PEOPLE = "deskflow.people"


def person(session: Session, person_id: str | None) -> Person | None:
    """A person; in a unit of work (engine.unit), read once per unit: the session's identity
    map holds objects weakly, so a person nobody kept a reference to would be read again."""
    if not person_id:
        return None
    held: dict[str, Person | None] | None = session.info.get(HELD_PEOPLE)
    if held is None:
        return _get(session, person_id)
    found = held.get(person_id)
    if found is None or found not in session:
        found = held[person_id] = _get(session, person_id)
    return found


#: built once: `Session.get` builds its SELECT on every miss, which costs more than running it
_PERSON = select(Person).where(Person.id == bindparam("person"))


def _get(session: Session, person_id: str) -> Person | None:
    """`session.get`: the identity map first (it also knows expired and deleted objects), else
    the statement built once."""
    if identity_key(Person, person_id) in session.identity_map:
        return session.get(Person, person_id)
    return session.scalars(_PERSON, {"person": person_id}).first()


def active_person(session: Session, person_id: str | None) -> Person | None:
    p = person(session, person_id)
    return p if p is not None and p.active else None


def members(session: Session, group_id: str) -> list[str]:
    """Active members of a group, in id order."""
    return list(session.scalars(
        select(Membership.person_id).join(Person, Person.id == Membership.person_id)
        .where(Membership.group_id == group_id, Person.active.is_(True))
        .order_by(Membership.person_id)))


def holders(session: Session, role_id: str) -> list[str]:
    return list(session.scalars(
        select(PersonRole.person_id).join(Person, Person.id == PersonRole.person_id)
        .where(PersonRole.role_id == role_id, Person.active.is_(True))
        .order_by(PersonRole.person_id)))


def groups_of(session: Session, person_id: str) -> list[str]:
    """The person's groups, in id order; read once per transaction until the session writes."""
    return list(remember(session, ("groups_of", person_id), lambda: tuple(sorted(session.scalars(
        _GROUPS, {"person": person_id})))))


def roles_of(session: Session, person_id: str) -> list[str]:
    """The person's roles, in id order; read once per transaction until the session writes."""
    return list(remember(session, ("roles_of", person_id), lambda: tuple(sorted(session.scalars(
        _ROLES, {"person": person_id})))))


def known_roles_and_groups(session: Session, person_id: str, roles: Iterable[str],
                           groups: Iterable[str]) -> None:
    """What roles_of and groups_of answer in this transaction, read by the caller with more
    (web.auth reads them with the signed-in person: two statements fewer on every page)."""
    remember(session, ("roles_of", person_id), lambda: tuple(sorted(roles)))
    remember(session, ("groups_of", person_id), lambda: tuple(sorted(groups)))


#: built once (every page asks them): building a statement costs more than running it; in
#: id order by Python's sort (the database's collation may order them otherwise)
_GROUPS = select(Membership.group_id).where(Membership.person_id == bindparam("person"))
_ROLES = select(PersonRole.role_id).where(PersonRole.person_id == bindparam("person"))


def is_member(session: Session, person_id: str, group_id: str) -> bool:
    """From the person's groups, read once per transaction until the session writes (engine.memo;
    a "no" is not kept by the identity map and would be read again by every panel of a page)."""
    return group_id in groups_of(session, person_id)


def is_admin(session: Session, person_id: str) -> bool:
    """From the person's roles, read once per transaction until the session writes (engine.memo)."""
    return ADMIN_ROLE in roles_of(session, person_id)


def group_exists(session: Session, group_id: str) -> bool:
    return session.get(Group, group_id) is not None


def managers_of(session: Session, person_id: str) -> list[str]:
    """The manager chain upwards, nearest first."""
    return list(chain_up(session, person_id))


def chain_up(session: Session, person_id: str) -> Iterator[str]:
    """The manager chain upwards, nearest first, each manager read only when asked for."""
    chain: list[str] = []
    current = person(session, person_id)
    while current is not None and current.manager_id and current.manager_id not in chain:
        chain.append(current.manager_id)
        yield current.manager_id
        current = person(session, current.manager_id)


def delegators_for(session: Session, delegate_id: str, now: datetime) -> list[str]:
    """People whose approvals `delegate_id` may decide right now (read once per transaction
    until the session writes: the inbox and the nav's count both ask)."""
    return list(remember(session, ("delegators_for", delegate_id, now), lambda: tuple(
        session.scalars(_DELEGATORS, {"delegate": delegate_id, "now": now}))))


_DELEGATORS = select(Delegation.person_id).where(
    Delegation.delegate_id == bindparam("delegate"), Delegation.starts_at <= bindparam("now"),
    Delegation.ends_at > bindparam("now"))


def person_context(session: Session, person_id: str | None) -> dict[str, Any] | None:
    """A person as expressions see them: plain values only."""
    p = person(session, person_id)
    if p is None:
        return None
    return {"id": p.id, "name": p.name, "email": p.email, "manager": p.manager_id,
            "title": p.title, "department": p.department, "location": p.location,
            "roles": roles_of(session, p.id), "groups": groups_of(session, p.id),
            "active": p.active}


def set_password_hash(session: Session, person_id: str, password_hash: str) -> None:
    """Store a person's new password hash and end every session they are signed in with."""
    found = session.get(Person, person_id)
    if found is None:
        raise NotFound(f"no person {person_id}; run deskflow directory sync first")
    found.password_hash = password_hash
    session.execute(delete(LoginSession).where(LoginSession.person_id == person_id))
