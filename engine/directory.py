"""Copy the catalog's directory (people, groups, roles) into the database."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.models import Directory
from engine.models import Group, Membership, Person, PersonRole, Role


def sync_directory(session: Session, directory: Directory) -> dict[str, int]:
    """Insert or update everyone in `directory`; people no longer listed become inactive.

    Passwords are kept. Nothing is deleted, because requests refer to people.
    """
    counts = {"people": 0, "groups": 0, "roles": 0}
    roles = {r.id: r for r in session.scalars(select(Role))}
    for r in directory.roles:
        role_row = roles.get(r.id) or Role(id=r.id)
        role_row.name = r.name
        session.add(role_row)
        counts["roles"] += 1
    session.flush()
    people = {p.id: p for p in session.scalars(select(Person))}
    listed = set()
    for p in directory.people:
        row = people.get(p.id) or Person(id=p.id)
        row.name, row.email, row.title = p.name, p.email, p.title
        row.department, row.location, row.active = p.department, p.location, p.active
        session.add(row)
        listed.add(p.id)
        counts["people"] += 1
    for pid, row in people.items():
        if pid not in listed:
            row.active = False
    session.flush()
    for p in directory.people:  # managers after everyone exists
        people_row = session.get(Person, p.id)
        assert people_row is not None
        people_row.manager_id = p.manager
    session.execute(delete(PersonRole))
    for p in directory.people:
        for role in p.roles:
            session.add(PersonRole(person_id=p.id, role_id=role))
    groups = {g.id: g for g in session.scalars(select(Group))}
    for g in directory.groups:
        group_row = groups.get(g.id) or Group(id=g.id)
        group_row.name, group_row.email, group_row.manager_id = g.name, g.email, g.manager
        session.add(group_row)
        counts["groups"] += 1
    session.flush()
    session.execute(delete(Membership))
    for g in directory.groups:
        for member in dict.fromkeys(g.members):
            session.add(Membership(group_id=g.id, person_id=member))
    session.flush()
    return counts
