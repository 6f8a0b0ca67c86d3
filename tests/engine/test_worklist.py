"""The agents' list (engine.worklist): filters, sorts, pages, visibility and saved views."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, delete, event, select, text, update
from sqlalchemy.engine import make_url

from engine import worklist
from engine.db import make_engine, make_sessionmaker
from engine.errors import Conflict, InvalidInput, NotFound
from engine.migrate import alembic_config, upgrade
from engine.models import AuditEvent, Comment, Request
from engine.service import RequestService
from engine.worklist import Filters
from tests.history.conftest import fresh_database


def order(service, answers, item="report-incident", actor="alice", **changes):
    a = answers[item]
    a.update(changes)
    return service.submit(item, actor, a).number


def numbers(sessions, acme, viewer="frank", page=1, **filters) -> list[str]:
    with sessions() as s:
        f = worklist.parse_filters(s, acme, viewer, {k: str(v) for k, v in filters.items()})
        return [r.number for r in worklist.worklist(s, acme, viewer, f, page).rows]


def set_fields(sessions, number, **values) -> None:
    with sessions.begin() as s:
        s.execute(update(Request).where(Request.number == number).values(**values))


@pytest.fixture
def seeing_all(acme):
    """The desk set to `agents_see: all` for one test (the default is groups)."""
    before = acme.settings.agents_see
    object.__setattr__(acme.settings, "agents_see", "all")
    yield
    object.__setattr__(acme.settings, "agents_see", before)


@pytest.fixture
def three(service, answers, sessions, clock, seeing_all):
    """An incident by alice, a VPN request by bob, an incident by bob assigned to frank;
    the desk set to agents_see: all."""
    mail = order(service, answers, short_description="Mail is down")
    clock.advance(hours=1)
    vpn = order(service, answers, "vpn-access", actor="bob")
    clock.advance(hours=1)
    printer = order(service, answers, actor="bob", short_description="Printer on fire",
                    impact="low", urgency="low")
    service.edit_record(printer, "frank", {"assignee": "frank"})
    return mail, vpn, printer


def test_the_list_shows_every_record_most_recently_updated_first(three, sessions, acme):
    mail, vpn, printer = three
    assert numbers(sessions, acme) == [printer, vpn, mail]


def test_each_filter_narrows_the_list(three, sessions, acme, service):
    mail, vpn, printer = three
    assert numbers(sessions, acme, kind="incident") == [printer, mail]
    assert numbers(sessions, acme, kind="request") == [vpn]
    assert numbers(sessions, acme, requester="bob") == [printer, vpn]
    assert numbers(sessions, acme, viewer="frank", assignee="me") == [printer]
    assert numbers(sessions, acme, assignee="frank") == [printer]
    assert numbers(sessions, acme, assignee="unassigned", kind="incident") == [mail]
    assert numbers(sessions, acme, group="service-desk", kind="incident") == [printer, mail]
    assert numbers(sessions, acme, category="email") == [printer, mail]  # the affected service
    with sessions() as s:
        p = s.scalar(select(Request.priority).where(Request.number == mail))
    assert mail in numbers(sessions, acme, priority=p)
    assert printer not in numbers(sessions, acme, priority=p)
    service.cancel(vpn, "bob")
    assert numbers(sessions, acme, status="closed") == [vpn]
    assert vpn not in numbers(sessions, acme, status="open")
    with sessions() as s:
        state = s.scalar(select(Request.state).where(Request.number == vpn))
    assert numbers(sessions, acme, state=state) == [vpn]


def test_the_sla_status_filter_reads_paused_before_the_sla_state(three, sessions, acme):
    mail, vpn, printer = three
    set_fields(sessions, mail, sla_state="breached")
    set_fields(sessions, vpn, sla_state="warning")
    set_fields(sessions, printer, sla_state="breached", sla_paused_at=datetime(2026, 11, 23, tzinfo=UTC))
    assert numbers(sessions, acme, sla="breached") == [mail]
    assert numbers(sessions, acme, sla="at_risk") == [vpn]
    assert numbers(sessions, acme, sla="paused") == [printer]
    assert numbers(sessions, acme, sla="on_track") == []
    with sessions() as s:
        got = {r.number: worklist.sla_status(r) for r in s.scalars(select(Request))}
    assert got == {mail: "breached", vpn: "at_risk", printer: "paused"}


def test_date_ranges_include_both_ends_as_whole_days(three, sessions, acme):
    mail, vpn, printer = three
    set_fields(sessions, mail, created_at=datetime(2026, 11, 1, 23, 59, tzinfo=UTC),
               updated_at=datetime(2026, 11, 2, 8, tzinfo=UTC))
    assert numbers(sessions, acme, created_from="2026-11-01", created_to="2026-11-01") == [mail]
    assert numbers(sessions, acme, created_to="2026-11-22") == [mail]
    assert numbers(sessions, acme, updated_from="2026-11-23") == [printer, vpn]
    assert numbers(sessions, acme, updated_from="2026-11-02", updated_to="2026-11-02") == [mail]


def test_the_search_finds_titles_numbers_answers_and_comments(three, sessions, acme, service):
    mail, vpn, printer = three
    assert numbers(sessions, acme, q="ON FIRE") == [printer]
    assert numbers(sessions, acme, q=mail) == [mail]
    assert numbers(sessions, acme, q="third floor") == [printer, mail]  # the description answer
    service.comment(vpn, "bob", "The token is 100% broken_again")
    assert numbers(sessions, acme, q="100% broken_") == [vpn]
    assert numbers(sessions, acme, q="100_") == []  # wildcards are taken literally
    assert numbers(sessions, acme, q="%") == [vpn]  # one or two characters: not the index
    assert numbers(sessions, acme, q="n_") == [vpn]  # not "n " of "Printer on fire"
    assert numbers(sessions, acme, q="TOKEN is") == [vpn]
    assert numbers(sessions, acme, q='"standard"') == [vpn]  # the answers as JSON text
    assert numbers(sessions, acme, q='"') == [printer, vpn, mail]
    assert numbers(sessions, acme, q="floor Printer") == []  # no match across two fields


def test_the_search_ignores_case_in_titles_answers_comments_and_notes(three, sessions, acme,
                                                                      service):
    mail, vpn, printer = three
    service.edit_record(mail, "frank", {"title": "Mail to İSTANBUL Überlastet"})
    set_fields(sessions, vpn, answers={"vpn_profile": "Contractor", "reason": "Remote AUDIT"})
    service.comment(printer, "bob", "Toner CARTRIDGE Ärger", internal=False)
    service.comment(printer, "frank", "Vendor TICKET Opened", internal=True)
    # PostgreSQL lowers the text as it lowered the index (İ is i there, not Python's i + dot)
    assert numbers(sessions, acme, q="mail TO İstanbul üBERLASTET") == [mail]
    assert numbers(sessions, acme, q="REMOTE audit") == [vpn]
    assert numbers(sessions, acme, q="cartridge ÄRGER") == [printer]
    assert numbers(sessions, acme, viewer="frank", q="vendor Ticket opened") == [printer]
    assert numbers(sessions, acme, viewer="judy", q="vendor Ticket opened") == []
    assert numbers(sessions, acme, q="Ü") == [mail]  # short: row by row, lowered alike


def test_internal_notes_are_found_only_by_those_who_may_read_them(three, sessions, acme,
                                                                  service):
    mail, vpn, printer = three
    service.comment(printer, "frank", "Toner smuggled out by the night shift", internal=True)
    assert numbers(sessions, acme, viewer="frank", q="smuggled") == [printer]  # service desk
    assert numbers(sessions, acme, viewer="oscar", q="smuggled") == [printer]  # an admin
    assert printer in numbers(sessions, acme, viewer="judy")  # agents_see: all, no part in it
    assert numbers(sessions, acme, viewer="judy", q="smuggled") == []
    assert numbers(sessions, acme, viewer="judy", q="sm") == []  # short: no index, same rule
    assert numbers(sessions, acme, viewer="frank", q="sm") == [printer]


def test_the_index_follows_every_change_in_the_same_transaction(three, sessions, acme,
                                                                service):
    mail, vpn, printer = three
    service.edit_record(printer, "frank", {"title": "Printer jammed"})
    assert numbers(sessions, acme, q="jammed") == [printer]
    service.edit_record(printer, "frank", {"title": "Printer unjammed, paper stuck"})
    assert numbers(sessions, acme, q="jammed") == [printer]
    assert numbers(sessions, acme, q="r jammed") == []
    assert numbers(sessions, acme, q="paper stuck") == [printer]
    service.comment(mail, "alice", "Outlook says: server unreachable")
    assert numbers(sessions, acme, q="UNREACHABLE") == [mail]
    set_fields(sessions, vpn, title="Token lost", answers={"vpn_profile": "contractor"})
    assert numbers(sessions, acme, q="token lost") == [vpn]  # a statement, not the service
    assert numbers(sessions, acme, q="contractor") == [vpn]
    assert numbers(sessions, acme, q="standard") == []
    with sessions.begin() as s:  # a comment moved to another record leaves the first one
        s.execute(update(Comment).where(Comment.body.like("Outlook%"))
                  .values(request_id=select(Request.id).where(Request.number == vpn)
                          .scalar_subquery()))
    assert numbers(sessions, acme, q="unreachable") == [vpn]
    with sessions.begin() as s:
        s.execute(delete(Comment).where(Comment.body.like("Outlook%")))
        s.execute(delete(Request).where(Request.number == printer))
    assert numbers(sessions, acme, q="unreachable") == []
    assert numbers(sessions, acme, q="paper stuck") == []
    with sessions.begin() as s:
        s.execute(update(Request).where(Request.number == mail).values(title="Mail lost"))
        s.rollback()
    assert numbers(sessions, acme, q="mail lost") == []


def test_merging_copies_the_comments_and_their_words(three, sessions, acme, service):
    mail, vpn, printer = three
    service.comment(printer, "bob", "Smoke on the second floor", internal=False)
    service.merge(printer, mail, "frank")
    assert sorted(numbers(sessions, acme, q="smoke on the")) == [mail, printer]


def test_migrations_make_the_same_index_as_the_models(db_url, tmp_path, pg_database):
    """The index is no model: compare what migration 0014 (and env.py) and create_schema make."""
    made = make_engine(db_url)
    if made.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        upgrade(url)
        migrated = make_engine(url)
        try:
            assert search_objects(migrated) == search_objects(made)
        finally:
            migrated.dispose()
            made.dispose()
        return
    admin = create_engine(make_url(pg_database).set(database="postgres"),
                          isolation_level="AUTOCOMMIT")
    name = f"{make_url(pg_database).database}_search"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_database).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        migrated = make_engine(url)
        assert search_objects(migrated) == search_objects(made)
        migrated.dispose()
    finally:
        made.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0028_lowers_the_index_and_the_search_finds_the_same(kind, tmp_path, acme,
                                                                        answers, clock,
                                                                        seeing_all):
    """PostgreSQL: 0028 writes the rows in lower case, its downgrade as they were."""
    with contextmanager(fresh_database)(kind, tmp_path, acme, migrated=True) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        service = RequestService(sessions, lambda: acme, clock)
        printer = order(service, answers, short_description="Printer on FIRE")
        service.comment(printer, "alice", "Smoke on the Second Floor")
        service.comment(printer, "frank", "Vendor TICKET", internal=True)
        found = {q: numbers(sessions, acme, q=q) for q in ("ON fire", "second FLOOR", "ticket")}
        assert found == {"ON fire": [printer], "second FLOOR": [printer], "ticket": [printer]}
        command.downgrade(alembic_config(url), "0027")
        if kind == "postgresql":
            with engine.connect() as conn:
                assert conn.execute(text("SELECT strpos(body, 'Printer on FIRE') > 0, notes "
                                         "FROM record_search")).one() == (True, "Vendor TICKET")
        upgrade(url)
        assert {q: numbers(sessions, acme, q=q) for q in found} == found
        engine.dispose()


def test_an_upgrade_puts_back_triggers_a_batch_migration_dropped(tmp_path, acme):
    """SQLite: Alembic's batch mode copies a table and renames the copy; the triggers go."""
    url = f"sqlite:///{tmp_path / 'batch.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER record_search_request_insert"))
        conn.execute(text("DROP TRIGGER record_search_request_update"))
        conn.execute(text("DELETE FROM record_search"))
    upgrade(url)  # at head already: no migration runs, engine/migrations/env.py still checks
    with engine.connect() as conn:
        names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    engine.dispose()
    assert {"record_search_request_insert", "record_search_request_update"} <= names


def search_objects(engine) -> list[tuple[str, ...]]:
    if engine.dialect.name == "sqlite":
        query = ("SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'record_search%' "
                 "ORDER BY name")
    else:
        query = ("SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                 "WHERE tgname LIKE 'record_search%' UNION ALL "
                 "SELECT 'function', proname, pg_get_functiondef(oid) FROM pg_proc "
                 "WHERE proname LIKE 'record_search%' UNION ALL "
                 "SELECT 'index', indexname, indexdef FROM pg_indexes "
                 "WHERE tablename = 'record_search' UNION ALL "
                 "SELECT 'column', a.attname, format_type(a.atttypid, a.atttypmod) "
                 "|| ' statistics ' || a.attstattarget FROM pg_attribute a "
                 "WHERE a.attrelid = 'record_search'::regclass AND a.attnum > 0 "
                 "AND NOT a.attisdropped ORDER BY 1, 2")
    with engine.connect() as conn:
        found = [tuple(str(v) for v in row) for row in conn.execute(text(query))]
    assert len(found) >= 6, found
    return found


def test_sorts_go_both_ways(three, sessions, acme):
    mail, vpn, printer = three
    assert numbers(sessions, acme, sort="number") == [mail, vpn, printer]
    assert numbers(sessions, acme, sort="-number") == [printer, vpn, mail]
    assert numbers(sessions, acme, sort="created") == [mail, vpn, printer]
    assert numbers(sessions, acme, sort="-created") == [printer, vpn, mail]
    assert numbers(sessions, acme, sort="updated") == [mail, vpn, printer]
    set_fields(sessions, mail, priority="p1")
    set_fields(sessions, vpn, priority="p4")
    set_fields(sessions, printer, priority="p2")
    assert numbers(sessions, acme, sort="priority") == [mail, printer, vpn]
    assert numbers(sessions, acme, sort="-priority") == [vpn, printer, mail]


def test_pages_hold_fifty_records_and_the_count_stops_past_a_thousand(three, sessions, acme,
                                                                      monkeypatch):
    monkeypatch.setattr(worklist, "PAGE_SIZE", 2)
    monkeypatch.setattr(worklist, "COUNT_CAP", 2)
    mail, vpn, printer = three
    with sessions() as s:
        first = worklist.worklist(s, acme, "frank", Filters(), 1)
        second = worklist.worklist(s, acme, "frank", Filters(), 2)
        assert worklist.count(s, acme, "frank", Filters(kind="incident")) == (2, False)
    assert ([r.number for r in first.rows], first.has_next, first.total, first.more) == (
        [printer, vpn], True, 3, True)
    assert ([r.number for r in second.rows], second.has_next) == ([mail], False)
    assert worklist.PAGE_SIZE == 2 and Filters().sort == "-updated"


@pytest.mark.parametrize("raw", [{"q": "printer"}, {"q": "PRINTER", "sort": "number"},
                                 {"q": "printer", "kind": "incident", "status": "open"}])
def test_a_search_pages_and_counts_in_one_statement_as_the_list_does(
        raw, three, sessions, acme, service, answers, clock, monkeypatch):
    monkeypatch.setattr(worklist, "PAGE_SIZE", 2)
    monkeypatch.setattr(worklist, "COUNT_CAP", 3)
    printer = three[2]
    jams = []
    for i in range(6):
        clock.advance(hours=1)
        jams.append(order(service, answers, short_description=f"Printer jam {i}"))
    found = [*reversed(jams), printer]
    if raw.get("sort") == "number":
        found.reverse()
    statements = []

    def seen(conn, cursor, statement, *rest):
        statements.append(statement)

    with sessions() as s:
        f = worklist.parse_filters(s, acme, "frank", raw)
        event.listen(s.get_bind(), "before_cursor_execute", seen)
        try:
            pages = [worklist.worklist(s, acme, "frank", f, page) for page in range(1, 6)]
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", seen)
    assert [[r.number for r in p.rows] for p in pages] == [found[0:2], found[2:4], found[4:6],
                                                           found[6:], []]
    assert [(p.total, p.more, p.has_next) for p in pages] == [(4, True, True)] * 3 + [
        (4, True, False), (4, True, False)]
    searched = [st for st in statements if "record_search" in st]
    assert len(searched) == 5, searched  # one a page: the count and the rows together


def test_someone_who_is_not_an_agent_sees_nothing(three, sessions, acme):
    assert numbers(sessions, acme, viewer="alice") == []


def test_with_agents_see_groups_an_agent_sees_their_groups_records_and_what_they_worked(
        three, sessions, acme, service):
    mail, vpn, printer = three
    object.__setattr__(acme.settings, "agents_see", "groups")
    try:
        set_fields(sessions, vpn, assignment_group_id="security")
        assert numbers(sessions, acme, viewer="frank") == [printer, mail]
        assert numbers(sessions, acme, viewer="judy") == [vpn]
        service.comment(printer, "frank", "Looking", internal=True)
        set_fields(sessions, printer, assignment_group_id="security", assignee_id=None)
        assert numbers(sessions, acme, viewer="frank") == [printer, mail]
        assert numbers(sessions, acme, viewer="oscar") == [printer, vpn, mail]  # an admin
    finally:
        object.__setattr__(acme.settings, "agents_see", "all")


def test_bad_filters_are_refused_with_a_message_each(service, sessions, acme):
    with sessions() as s, pytest.raises(InvalidInput) as err:
        worklist.parse_filters(s, acme, "frank", {
            "kind": "bug", "priority": "p9", "sla": "late", "group": "nobody", "assignee": "zed",
            "created_from": "2026-13-01", "sort": "colour", "colour": "red", "q": "x" * 101})
    assert err.value.fields == {
        "kind": ["bug is not one of: request, incident, problem, change."],
        "priority": ["p9 is not one of: p1, p2, p3, p4."],
        "sla": ["late is not one of: on_track, at_risk, breached, paused."],
        "group": ["nobody is not a known group."],
        "assignee": ["zed is not a known person."],
        "created_from": ["2026-13-01 is not a date (YYYY-MM-DD)."],
        "sort": ["colour is not one of: updated, -updated, created, -created, priority, "
                 "-priority, number, -number."],
        "colour": ["Unknown filter colour."],
        "q": ["Must be at most 100 characters."]}


def test_filters_read_back_into_query_text(service, sessions, acme):
    f = Filters(kind="incident", created_from=date(2026, 11, 1), sort="-updated")
    assert worklist.as_query(f) == {"kind": "incident", "created_from": "2026-11-01"}


# ---------------------------------------------------------------- saved views


def test_a_person_saves_lists_and_deletes_views(service, sessions, acme):
    service.save_view("frank", " Mine ", {"assignee": "me", "q": ""})
    service.save_view("frank", "Breached", {"sla": "breached"})
    service.save_view("grace", "Mine", {"assignee": "me"})
    with sessions() as s:
        views = worklist.views_of(s, "frank")
        assert [(v.name, v.query) for v in views] == [
            ("Breached", {"sla": "breached"}), ("Mine", {"assignee": "me"})]
        mine = views[1].id
    with pytest.raises(NotFound, match=f"^no view {mine}$"):
        service.delete_view("grace", mine)
    service.delete_view("frank", mine)
    with sessions() as s:
        assert [v.name for v in worklist.views_of(s, "frank")] == ["Breached"]
        audit = s.scalars(select(AuditEvent).where(AuditEvent.actor_id == "frank")
                          .order_by(AuditEvent.id)).all()
    assert [(a.event, a.detail["name"]) for a in audit] == [
        ("view_saved", "Mine"), ("view_saved", "Breached"), ("view_deleted", "Mine")]


def test_a_view_needs_a_new_name_and_good_filters(service, sessions):
    service.save_view("frank", "Mine", {"assignee": "me"})
    with pytest.raises(Conflict, match="^you already have a view named Mine$"):
        service.save_view("frank", "Mine", {})
    with pytest.raises(InvalidInput) as err:
        service.save_view("frank", "  ", {})
    assert err.value.fields == {"name": ["This field is required."]}
    with pytest.raises(InvalidInput) as err:
        service.save_view("frank", "Odd", {"kind": "bug"})
    assert err.value.fields == {"kind": ["bug is not one of: request, incident, problem, change."]}
    with sessions() as s:
        assert [v.name for v in worklist.views_of(s, "frank")] == ["Mine"]


def test_with_agents_see_all_a_desk_agent_reads_every_record_but_acts_only_on_their_own(
        three, sessions, acme, service, clock):
    mail, vpn, printer = three
    with sessions() as s:
        assert service.request(s, mail, "judy", clock()).number == mail  # security, no part in it
    assert mail in numbers(sessions, acme, viewer="judy")
    with pytest.raises(NotFound) as err:
        service.edit_record(mail, "judy", {"title": "Mine now"})
    assert str(err.value) == f"no request {mail}"


def test_with_agents_see_groups_a_record_of_another_group_is_not_found(three, sessions, acme,
                                                                      service, clock):
    mail, vpn, printer = three
    object.__setattr__(acme.settings, "agents_see", "groups")
    with sessions() as s, pytest.raises(NotFound) as err:
        service.request(s, mail, "judy", clock())
    assert str(err.value) == f"no request {mail}"
    assert mail not in numbers(sessions, acme, viewer="judy")
