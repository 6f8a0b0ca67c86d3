"""The directory (`directory.yaml`): people, groups and roles, and who manages whom."""

from __future__ import annotations

from catalog.errors import suggest
from catalog.models import Directory, Group, Person, Role
from catalog.parse import Parsed
from catalog.source import SourceDoc


def parse_directory(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Directory", doc), doc.data
    roles = tuple(Role(r["id"], r["name"], r.get("description", "")) for r in d.get("roles", []))
    people = tuple(Person(x["id"], x["name"], x["email"], x.get("manager"), x.get("title", ""),
                          x.get("department", ""), x.get("location", ""), tuple(x.get("roles", [])),
                          x.get("active", True)) for x in d.get("people", []))
    groups = tuple(Group(g["id"], g["name"], g.get("description", ""), g.get("email", ""),
                         g.get("manager"), tuple(g.get("members", []))) for g in d.get("groups", []))
    lists: tuple[tuple[str, tuple[Person | Group | Role, ...]], ...] = (
        ("people", people), ("groups", groups), ("roles", roles))
    for key, things in lists:
        seen: dict[str, int] = {}
        for i, thing in enumerate(things):
            if thing.id in seen:
                first = doc.locate((key, seen[thing.id], "id"))
                p.error((key, i, "id"), f"duplicate id {thing.id}", f"first defined at line {first.line}")
            seen.setdefault(thing.id, i)
    person_ids = {x.id for x in people}
    role_ids = {r.id for r in roles}
    for i, x in enumerate(people):
        if x.manager is not None and x.manager not in person_ids:
            p.error(("people", i, "manager"), f"unknown person {x.manager}", suggest(x.manager, person_ids))
        if x.manager == x.id:
            p.error(("people", i, "manager"), f"{x.id} is their own manager")
        for j, role in enumerate(x.roles):
            if role not in role_ids:
                p.error(("people", i, "roles", j), f"unknown role {role}", suggest(role, role_ids))
    for i, g in enumerate(groups):
        if g.manager is not None and g.manager not in person_ids:
            p.error(("groups", i, "manager"), f"unknown person {g.manager}", suggest(g.manager, person_ids))
        for j, member in enumerate(g.members):
            if member not in person_ids:
                p.error(("groups", i, "members", j), f"unknown person {member}", suggest(member, person_ids))
    directory = Directory(people, groups, roles)
    for i, x in enumerate(people):
        chain = [x.id]
        current = x
        while current.manager and current.manager in person_ids:
            if current.manager in chain:
                if current.manager == x.id and len(chain) > 1:
                    p.error(("people", i, "manager"), "manager chain loops: "
                            + " -> ".join([*chain, x.id]), "someone must have no manager")
                break
            chain.append(current.manager)
            nxt = directory.person(current.manager)
            if nxt is None:
                break
            current = nxt
    p.model = directory
    return p

