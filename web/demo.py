"""The demo: the acme catalog shipped inside the package, its database, logins and requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.knowledge import Knowledge
from engine.models import Approval, Person, Request, Task
from web.bundled import bundled_catalog

if TYPE_CHECKING:
    from flask import Flask

    from engine.service import RequestService

#: every demo person signs in with this password
DEMO_PASSWORD = "deskflow-demo"

#: the logins `deskflow demo` prints: who, and what they show
DEMO_LOGINS = (("alice", "requester"), ("bob", "approver"), ("frank", "agent"), ("oscar", "admin"))

_LAPTOP = {"model": "std14", "keyboard_layout": "us-intl", "cost_center": "CC-1234",
           "building": "ams-hq", "floor": 4, "desk": "4.12"}


def demo_database(instance_dir: Path) -> str:
    """The URL of the demo's SQLite database in `instance_dir`."""
    return f"sqlite:///{(instance_dir / 'deskflow.sqlite').resolve()}"


def prepare_demo(instance_dir: Path, base_url: str = "http://127.0.0.1:5000",
                 history: Path | bool = False) -> Flask:
    """Create (or reuse) the demo database in `instance_dir` and return the app serving it.

    Migrations are applied, the acme directory is synced, every demo person gets
    DEMO_PASSWORD, and requests are seeded when the database has none yet. What was seeded
    is in `app.extensions["deskflow_demo"]` (empty when the database was reused). With
    `history` (True, or a PATH: `--with-history`) a year of history is imported or generated
    after the seed (engine.history.generate); what was done is in
    `app.extensions["deskflow_history"]`.
    """
    from engine.directory import sync_directory
    from engine.migrate import upgrade
    from web import create_app
    from web.config import secret_key
    from web.state import portal_state

    instance_dir.mkdir(parents=True, exist_ok=True)
    url = demo_database(instance_dir)
    upgrade(url)
    app = create_app({"DESKFLOW_DATABASE_URL": url, "DESKFLOW_CATALOG": str(bundled_catalog()),
                      "DESKFLOW_SECURE_COOKIES": False, "DESKFLOW_BASE_URL": base_url,
                      "SECRET_KEY": secret_key(str(instance_dir))})
    app.instance_path = str(instance_dir.resolve())
    with app.app_context():
        state = portal_state()
        with state.sessions.begin() as session:
            sync_directory(session, state.catalog.directory)
            set_demo_passwords(session, [p.id for p in state.catalog.directory.people])
        app.extensions["deskflow_demo"] = seed_demo(state.service, state.sessions)
        if history is not False:
            app.extensions["deskflow_history"] = demo_history(
                state, None if history is True else history)
    return app


def history_search_dirs() -> list[Path]:
    """Where `--with-history` without PATH looks for the ServiceNow log: ../shared/data from
    the current directory, then from the checkout root."""
    root = Path(__file__).resolve().parent.parent
    return [Path.cwd().parent / "shared" / "data", root.parent / "shared" / "data"]


def demo_history(state: Any, path: Path | None) -> Any:
    """Import the ServiceNow log found at `path` or in history_search_dirs(), else generate
    a year of history; a HistoryOutcome."""
    from datetime import UTC, datetime

    from engine.history.generate import demo_history as run
    from engine.history.generate import find_export

    export = find_export(path, history_search_dirs())
    priorities = {p.id for p in state.catalog.settings.priorities}
    return run(state.sessions.kw["bind"], priorities, datetime.now(UTC), export)


def set_demo_passwords(session: Session, person_ids: list[str]) -> None:
    """Give these people DEMO_PASSWORD (one hash: this is a demo, not a user store)."""
    from web.passwords import hash_password

    session.execute(update(Person).where(Person.id.in_(person_ids))
                    .values(password_hash=hash_password(DEMO_PASSWORD)))


def seed_demo(service: RequestService, sessions: sessionmaker[Session]) -> dict[str, str]:
    """Order a handful of requests in different states, unless the database has requests already.

    Everything goes through the request service, so approvals, tasks, timers, audit events
    and emails are real. Returns what was created: a description -> request number.
    """
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(Request)):
            return {}
    created: dict[str, str] = {}

    def order(what: str, item: str, who: str, answers: dict[str, Any]) -> Request:
        req = service.submit(item, who, answers)
        assert req.number is not None
        created[what] = req.number
        return req

    def act(req: Request, step: Callable[[int], object], kind: str, holder: str | None = None) -> None:
        step(_pending(sessions, req, kind, holder))

    # Alice's laptop: waiting for her manager, Bob.
    order("laptop waiting for bob's approval", "new-laptop", "alice", dict(_LAPTOP))

    # Bob approved this one; it waits in the IT Hardware queue.
    req = order("approved laptop in the it-hardware queue", "new-laptop", "alice",
                {**_LAPTOP, "keyboard_layout": "nl", "replaces_asset": "ACME-001234"})
    act(req, lambda i: service.approve(i, "bob", "Fine, the old one is four years old."),
        "approval", "bob")

    # An incident Frank took from the Service Desk queue.
    req = order("incident claimed by frank", "report-incident", "alice", {
        "short_description": "Cannot open the CRM since this morning",
        "affected_service": "business-system",
        "description": "The CRM shows 'session expired' right after signing in, in every browser.",
        "impact": "low", "urgency": "high", "contact_email": "alice.jansen@acme.example"})
    act(req, lambda i: service.claim_task(i, "frank"), "task")
    # ...Alice replied (Frank's bell) and Frank asked Grace in a note (Grace's bell).
    assert req.number is not None
    service.comment(req.number, "alice", "It still fails after clearing the browser cache.")
    service.comment(req.number, "frank", "@grace could you check the CRM sign-in logs?",
                    internal=True)
    # Frank keeps the incident's record: he is its assignee; Carol (the CRM's data owner) watches.
    service.edit_record(req.number, "frank", {"assignee": "frank", "category": "CRM"})
    service.watch(req.number, "frank", "carol")
    # ...and keeps a view of his CRM work on the agents' list (/records), beside acme's shared ones.
    service.save_view("frank", "My CRM work", {"assignee": "me", "category": "CRM"})

    # Administrator access: needs the data owner (Carol) and Information Security.
    order("system access waiting for two approvals", "system-access", "alice", {
        "system": "crm", "role": "crm-admin", "level": "admin", "access_until": "2027-06-30",
        "reason": "I take over the CRM pipeline reports while the admin is on leave."})

    # Delivered: Bob approved, Frank delivered.
    req = order("fulfilled monitor order", "monitor-peripherals", "alice", {
        "accessories": [{"accessory": "dock", "quantity": 1}], "building": "ams-hq", "floor": 4})
    act(req, lambda i: service.approve(i, "bob"), "approval", "bob")
    act(req, lambda i: service.claim_task(i, "frank"), "task")
    act(req, lambda i: service.complete_task(i, "frank", comment="Left on Alice's desk."), "task")

    # Rejected by Bob, with a reason.
    req = order("rejected software licence", "software-licence", "alice", {
        "software": "figma-professional", "cost_center": "CC-1234",
        "business_reason": "I would like to mock up slides for the sales kick-off."})
    act(req, lambda i: service.reject(i, "bob", "Use the slide templates in the sales library."),
        "approval", "bob")

    # Cancelled by Alice herself.
    req = order("cancelled vpn access", "vpn-access", "alice", {"vpn_profile": "standard"})
    assert req.number is not None
    service.cancel(req.number, "alice", "Ordered by mistake; I already have VPN access.")

    # Resolved by Grace, waiting for Alice to confirm or reopen; Bob's report of the same
    # outage was merged into it as a duplicate (docs/service-desk.md, "Incident lifecycle").
    printer = {"short_description": "Printer on floor 4 prints blank pages",
               "affected_service": "printing",
               "description": "Every job on the floor 4 printer comes out blank since lunch.",
               "impact": "medium", "urgency": "medium", "contact_email": "alice.jansen@acme.example"}
    req = order("resolved incident waiting for alice", "report-incident", "alice", printer)
    dup = order("duplicate merged into the printer incident", "report-incident", "bob",
                {**printer, "contact_email": "bob.bakker@acme.example"})
    assert req.number is not None and dup.number is not None
    service.merge(dup.number, req.number, "grace")
    service.resolve(req.number, "grace", "fixed", "Replaced the empty toner cartridge.")

    _seed_major_incident(service, order)
    created["problem turned known error"] = _seed_known_error(service, order)

    # Knowledge: votes an agent sees on the articles, and reads from order forms.
    kb = Knowledge(service.unit)
    for who, article, verdict in (("alice", "vpn-setup", "helpful"), ("peter", "vpn-setup", "helpful"),
                                  ("bob", "reset-your-password", "not-helpful")):
        kb.vote(article, who, verdict)
    kb.record_view("reset-your-password", "password-unlock", "peter")
    with sessions.begin() as session:
        _seed_configuration_items(session, service)
    created.update(_seed_changes(service, sessions, order))
    return created


def _seed_major_incident(service: RequestService, order: Callable[..., Request]) -> None:
    """A Critical mail outage (major by acme's rule) with two callers' incidents attached."""
    mail = {"short_description": "Email down for the whole company", "affected_service": "email",
            "description": "Nobody can send or receive mail since 08:50; Outlook says disconnected.",
            "impact": "high", "people_affected": 400, "urgency": "high",
            "contact_email": "bob.bakker@acme.example"}
    parent = order("major incident: email down", "report-incident", "bob", mail)
    alone = {k: v for k, v in mail.items() if k != "people_affected"}  # asked when impact is wider
    children = [order(f"child of the major incident, from {who}", "report-incident", who, {
        **alone, "short_description": text, "impact": "low", "urgency": "high",
        "contact_email": f"{email}@acme.example"})
        for who, email, text in (("alice", "alice.jansen", "Outlook cannot connect"),
                                 ("carol", "carol.devries", "No new mail since this morning"))]
    assert parent.number is not None
    service.attach_incidents(parent.number, "frank", " ".join(c.number or "" for c in children))


def _seed_known_error(service: RequestService, order: Callable[..., Request]) -> str:
    """Two callers' VPN incidents behind one problem, which IT Operations made a known error."""
    vpn = {"short_description": "VPN drops every 30 minutes on Wi-Fi", "affected_service": "network",
           "description": "On the office Wi-Fi the VPN disconnects every half hour; wired is fine.",
           "impact": "low", "urgency": "medium"}
    incidents = [order(f"vpn incident from {who}", "report-incident", who, {
        **vpn, "contact_email": f"{email}@acme.example"})
        for who, email in (("alice", "alice.jansen"), ("peter", "peter.brouwer"))]
    problem = service.create_problem("frank", [i.number or "" for i in incidents], {
        "short_description": "VPN drops every 30 minutes on Wi-Fi", "service": "network",
        "description": "Reported by several people on the office Wi-Fi since the access points "
                       "were upgraded."})
    assert problem.number is not None
    service.edit_problem(problem.number, "heidi", {
        "root_cause": "The new Wi-Fi controller ends idle sessions after 30 minutes.",
        "workaround": "Use the wired network, or reconnect the VPN when it drops; "
                      "a controller update is planned.",
        "known_error": "yes"})
    return problem.number


def _seed_configuration_items(session: Session, service: RequestService) -> None:
    """Alice's and Bob's devices, and the CRM with what it runs on (see /cmdb)."""
    from engine import cmdb
    from engine.cmdb import CIInput

    catalog, now = service.catalog(), service.clock()

    def add(type_id: str, name: str, fields: dict[str, Any], **kw: Any) -> int:
        return cmdb.create(session, catalog, "oscar", type_id,
                           CIInput(name=name, fields=fields, **kw), now).id

    add("laptop", "Alice's laptop", {"serial_number": "ACME-001234", "model": "Standard 14"},
        owner_id="alice")
    add("phone", "Alice's phone", {"imei": "356938035643809", "model": "Pixel"}, owner_id="alice")
    add("laptop", "Bob's laptop", {"serial_number": "ACME-002468", "model": "Performance 16"},
        owner_id="bob")
    add("laptop", "Spare laptop", {"serial_number": "ACME-003579", "model": "Standard 14"},
        status="in_stock", owner_group_id="it-hardware")
    db = add("server", "crm-db01", {"hostname": "crm-db01", "environment": "production"},
             owner_group_id="it-ops")
    crm = add("application", "CRM", {"code": "CRM", "criticality": "high",
                                     "url": "https://crm.acme.example"}, owner_group_id="it-ops")
    vpn = add("network-service", "VPN", {"code": "VPN"}, owner_group_id="it-ops")
    cmdb.relate(session, "oscar", crm, "runs_on", db, now)
    cmdb.relate(session, "oscar", crm, "depends_on", vpn, now)


def _seed_changes(service: RequestService, sessions: sessionmaker[Session],
                  order: Callable[..., Request]) -> dict[str, str]:
    """Changes of each kind on the calendar this month and next: two in conflict on crm-db01,
    one in the year-end freeze, a high-risk one awaiting the board, an emergency awaiting review."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from engine.models import Asset

    cat = service.catalog()
    today = service.clock().astimezone(ZoneInfo(cat.settings.time_zone)).date()
    soon, next_month = today + timedelta(days=3), (today.replace(day=1) + timedelta(days=40)).replace(day=10)
    with sessions() as session:
        ids = dict(session.execute(select(Asset.name, Asset.id)).all())
    db, crm = str(ids["crm-db01"]), str(ids["CRM"])
    normal = {"change_title": "Upgrade the CRM database to the current release",
              "description": "Upgrade crm-db01 to the current database release: security fixes "
                             "and the faster backup the CRM team asked for.",
              "affected_systems": ["crm"], "implementer": "erin", "affected_server": db}

    def task(req: Request, who: str, outcome: str, answers: dict[str, Any]) -> None:
        i = _pending(sessions, req, "task", None)
        service.claim_task(i, who)
        service.complete_task(i, who, outcome=outcome, answers=answers)

    order("standard change in conflict on crm-db01", "standard-change", "heidi", {
        "change_template": "restart-service", "target": "crm-db01.acme.internal",
        "planned_date": soon.isoformat(), "start_time": "22:00", "end_time": "23:00",
        "affected_server": db})
    req = order("normal change approved by the board, in conflict", "normal-change", "heidi", {
        **normal, "planned_date": soon.isoformat(), "start_time": "21:30", "end_time": "23:30",
        "expected_downtime_minutes": 30, "rollback_plan": "Restore last night's backup."})
    for who in ("carol", "erin"):
        act_on = _pending(sessions, req, "approval", who)
        service.approve(act_on, who, "Fine; mind the backup window.")
    order("high-risk normal change awaiting the board", "normal-change", "heidi", {
        **normal, "change_title": "Move the CRM to the new customer portal",
        "planned_date": next_month.isoformat(), "start_time": "19:00", "end_time": "23:00",
        "customer_facing": True, "users_affected": "all", "affected_application": crm,
        "affected_server": "", "rollback_plan": "Switch the portal's DNS back to the old site."})
    freeze = next((f for f in cat.settings.change_freezes if f.end >= today), None)
    if freeze is not None:
        order("standard change inside the change freeze", "standard-change", "heidi", {
            "change_template": "monthly-patching", "target": "crm-db01.acme.internal",
            "planned_date": max(freeze.start, today).isoformat(), "start_time": "20:00",
            "end_time": "21:00"})
    req = order("emergency change awaiting its review", "emergency-change", "heidi", {
        "change_title": "Patch the VPN gateway against the published exploit",
        "justification": "An exploit for our VPN gateway is public and being used.",
        "planned_date": today.isoformat(), "start_time": "08:00", "end_time": "09:00",
        "affected_application": crm, "rollback_plan": "Restore the gateway's configuration backup."})
    service.approve(_pending(sessions, req, "approval", "oscar"), "oscar", "Go ahead now.")
    task(req, "erin", "implemented", {"implementation_notes": "Installed the vendor's fixed release "
                                                              "and restarted the gateway."})
    return {}


def _pending(sessions: sessionmaker[Session], req: Request, kind: str, holder: str | None) -> int:
    """The id of the request's pending approval (of `holder`) or open task."""
    with sessions() as session:
        if kind == "approval":
            query = select(Approval.id).where(Approval.request_id == req.id,
                                              Approval.decision == "pending")
            if holder:
                query = query.where(Approval.approver_id == holder)
        else:
            query = select(Task.id).where(Task.request_id == req.id, Task.status == "open")
        found = session.scalars(query.order_by(Approval.id if kind == "approval" else Task.id)).first()
    if found is None:
        raise LookupError(f"demo seed: {req.number} has no pending {kind}")
    return found
