"""One-click email links through the request service: approve, reject, confirm, reopen.

Each link is signed, single use, expiring (the service's clock decides) and bound to its
approval and person; reading one records nothing, and every refusal changes nothing.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from catalog.loader import load_catalog
from catalog.models import Duration
from engine.email_links import SALT
from engine.errors import Conflict, InvalidInput, NotAllowed, Unavailable
from engine.mail import render_email
from engine.models import Approval, AuditEvent, EmailAction, OutboxMessage, Person, Request
from engine.service import RequestService
from engine.signed_links import LinkGone, LinkRefused
from tests.engine.test_satisfaction import DIRECTORY, SETTINGS, WORKFLOW
from tests.stored import events, reload

KEY = "the-desk-secret"
BASE = "https://desk.example.com"
VPN = {"short_description": "VPN drops every 30 minutes", "affected_service": "network",
       "description": "The VPN disconnects every half hour while on the office Wi-Fi.",
       "impact": "low", "urgency": "medium", "contact_email": "alice@acme.example"}


@pytest.fixture
def desk(service, sessions, acme, clock) -> RequestService:
    """The service (its directory synced) with a secret key and a base URL for links."""
    return RequestService(sessions, lambda: acme, clock, base_url=BASE, secret_key=KEY)


@pytest.fixture
def vpn(desk, answers) -> str:
    """Alice asks for VPN access; Bob, her manager, is its one approver."""
    return str(desk.submit("vpn-access", "alice", answers["vpn-access"]).number)


def email_of(sessions, person: str) -> str:
    with sessions() as s:
        return str(s.get(Person, person).email)


def mails(sessions, number, event) -> list[OutboxMessage]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(OutboxMessage).where(
            OutboxMessage.request_id == req.id, OutboxMessage.event == event)
            .order_by(OutboxMessage.id)))


def actions(sessions, number, event, person) -> dict[str, str]:
    """The links of the last `event` email to `person`, as action -> token."""
    to = email_of(sessions, person)
    mail = [m for m in mails(sessions, number, event) if m.payload["to"] == [to]][-1]
    found = dict(mail.payload["context"]["actions"])
    for action in [a for a in found if a != "expires_at"]:
        assert found[action].startswith(f"{BASE}/email-actions/")
        found[action] = found[action].rsplit("/", 1)[1]
    return found


def approval_of(sessions, number) -> Approval:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return s.scalars(select(Approval).where(Approval.request_id == req.id)
                         .order_by(Approval.id)).all()[-1]


def link_rows(sessions) -> list[EmailAction]:
    with sessions() as s:
        return list(s.scalars(select(EmailAction).order_by(EmailAction.id)))


def audit_count(sessions) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)))


# ---------------------------------------------------------------- the approval email


def test_the_approval_email_carries_approve_and_reject_links_for_its_approver(desk, sessions, vpn,
                                                                             clock):
    [mail] = mails(sessions, vpn, "approval_requested")
    assert mail.payload["to"] == [email_of(sessions, "bob")]
    [row] = link_rows(sessions)
    appr = approval_of(sessions, vpn)
    assert (row.kind, row.person_id, row.approval_id, row.used_at) == ("approval", "bob", appr.id, None)
    assert row.expires_at == clock() + timedelta(days=7)
    links = mail.payload["context"]["actions"]
    subject, text, html = render_email("approval_requested", mail.payload["context"])
    assert f"Approve: {links['approve']}\nReject: {links['reject']}\n" in text
    assert f'href="{links["approve"]}"' in (html or "") and f'href="{links["reject"]}"' in (html or "")
    assert "either works once, until 2026-11-30 08:30 UTC" in text


def test_the_expiry_is_a_setting(desk, sessions, acme, clock, answers):
    short = replace(acme, settings=replace(acme.settings, email_actions_expires=Duration(2, "day", False)))
    desk = RequestService(sessions, lambda: short, clock, base_url=BASE, secret_key=KEY)
    desk.submit("vpn-access", "alice", answers["vpn-access"])
    [row] = link_rows(sessions)
    assert row.expires_at == clock() + timedelta(days=2)


@pytest.mark.parametrize(("line", "expected"), [
    ("email_actions: {expires: 2 business days}\n", []),
    ("email_actions: {expires: soon}\n",
     ["deskflow.yaml:5:26: email_actions.expires: 'soon' does not match "
      "'^[1-9][0-9]{0,5} (business )?(minute|hour|day|week)s?$'"]),
    ("email_actions: {expire: 2 days}\n",
     ["deskflow.yaml:5:17: email_actions.expire: unknown key expire (did you mean expires?)"]),
])
def test_the_expiry_setting_is_checked_where_it_is_written(tmp_path, line, expected):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS + line)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "items").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    loaded = load_catalog(tmp_path)
    assert [e.render() for e in loaded.errors] == expected
    if not expected:
        assert loaded.settings.email_actions_expires == Duration(2, "day", True)


def test_acme_sets_the_default_of_seven_days(acme):
    assert acme.settings.email_actions_expires == Duration(7, "day", False)


def test_without_a_secret_key_no_links_are_made(service, sessions, answers):
    number = service.submit("vpn-access", "alice", answers["vpn-access"]).number
    [mail] = mails(sessions, number, "approval_requested")
    assert "actions" not in mail.payload["context"] and link_rows(sessions) == []
    subject, text, html = render_email("approval_requested", mail.payload["context"])
    assert "Approve:" not in text and "Approve</a>" not in (html or "")


# ---------------------------------------------------------------- using a link


def test_reading_a_link_changes_nothing_and_the_first_click_approves(desk, sessions, vpn, clock):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    before = audit_count(sessions)
    with sessions() as s:
        pending = desk.email_action(s, KEY, tokens["approve"], clock())
        assert (pending.action, pending.req.number, pending.link.person_id) == ("approve", vpn, "bob")
    assert audit_count(sessions) == before and reload(sessions, vpn).state == "manager_approval"
    clock.advance(hours=1)
    done = desk.use_email_action(KEY, tokens["approve"], "  Fine by me.  ")
    assert (done.action, done.req.number) == ("approve", vpn)
    appr = approval_of(sessions, vpn)
    assert (appr.decision, appr.decided_by_id, appr.comment) == ("approved", "bob", "Fine by me.")
    assert reload(sessions, vpn).state == "setup"
    [row] = link_rows(sessions)
    assert (row.used_at, row.used_action, row.nonce) == (clock(), "approve", "")
    [used] = events(sessions, vpn, "email_action")
    assert (used.actor_id, used.detail) == ("bob", {"action": "approve", "link": row.id,
                                                    "approval": appr.id, "via": "email"})
    assert [e.actor_id for e in events(sessions, vpn, "approval_approved")] == ["bob"]


@pytest.mark.parametrize("second", ["approve", "reject"])
def test_a_second_click_on_either_link_says_it_was_used_and_changes_nothing(desk, sessions, vpn,
                                                                           clock, second):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    desk.use_email_action(KEY, tokens["approve"])
    before = audit_count(sessions)
    with pytest.raises(LinkGone, match=f"^This link was already used: it was used on 2026-11-23 "
                                       f"08:30 UTC to approve {vpn}. Nothing was changed.$"):
        desk.use_email_action(KEY, tokens[second], "changed my mind")
    assert audit_count(sessions) == before and approval_of(sessions, vpn).decision == "approved"


def test_reject_needs_a_comment_and_a_refused_try_does_not_spend_the_link(desk, sessions, vpn):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    with pytest.raises(InvalidInput, match="^a rejection needs a comment"):
        desk.use_email_action(KEY, tokens["reject"], "   ")
    assert link_rows(sessions)[0].used_at is None and events(sessions, vpn, "email_action") == []
    desk.use_email_action(KEY, tokens["reject"], "Not for contractors.")
    appr = approval_of(sessions, vpn)
    assert (appr.decision, appr.comment) == ("rejected", "Not for contractors.")
    assert reload(sessions, vpn).state == "rejected"


def test_an_expired_link_says_until_when_and_changes_nothing(desk, sessions, vpn, clock):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    clock.advance(days=7)
    message = (f"^This link has expired: it was valid until 2026-11-30 08:30 UTC. Nothing was "
               f"changed; open {vpn} in the portal instead.$")
    with sessions() as s, pytest.raises(LinkGone, match=message):
        desk.email_action(s, KEY, tokens["approve"], clock())
    with pytest.raises(LinkGone, match=message):
        desk.use_email_action(KEY, tokens["approve"])
    assert approval_of(sessions, vpn).decision == "pending" and link_rows(sessions)[0].used_at is None
    clock.now -= timedelta(seconds=1)  # one second before: still valid
    desk.use_email_action(KEY, tokens["approve"])
    assert approval_of(sessions, vpn).decision == "approved"


FORGED = "^This link is not valid: it was changed or not made by this service desk. Nothing was changed.$"


def test_forged_tampered_and_crossed_tokens_are_refused(desk, sessions, vpn, answers, clock):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    other = desk.submit("vpn-access", "peter", answers["vpn-access"]).number
    [mine, theirs] = link_rows(sessions)
    genuine = URLSafeSerializer(KEY, salt=SALT)
    bad = [
        tokens["approve"][:-2] + ("AA" if not tokens["approve"].endswith("AA") else "BB"),
        URLSafeSerializer("another-key", salt=SALT).dumps({"e": mine.id, "a": "approve", "n": mine.nonce}),
        URLSafeSerializer(KEY, salt="deskflow-csat").dumps({"e": mine.id, "a": "approve", "n": mine.nonce}),
        # another approval's link with this link's nonce: bound to its own row and nonce
        genuine.dumps({"e": theirs.id, "a": "approve", "n": mine.nonce}),
        # an action that is not this kind of link's
        genuine.dumps({"e": mine.id, "a": "confirm", "n": mine.nonce}),
        genuine.dumps({"e": True, "a": "approve", "n": mine.nonce}),
        genuine.dumps(["approve"]),
        "", "x" * 501,
    ]
    for token in bad:
        with sessions() as s, pytest.raises(LinkRefused, match=FORGED):
            desk.email_action(s, KEY, token, clock())
        with pytest.raises(LinkRefused, match=FORGED):
            desk.use_email_action(KEY, token)
    assert {a.decision for a in (approval_of(sessions, vpn), approval_of(sessions, other))} == {"pending"}
    assert events(sessions, vpn, "email_action") == [] and events(sessions, other, "email_action") == []


def test_the_token_of_one_approval_decides_that_approval_only(desk, sessions, vpn, answers):
    other = desk.submit("vpn-access", "peter", answers["vpn-access"]).number
    approver = approval_of(sessions, other).approver_id
    desk.use_email_action(KEY, actions(sessions, other, "approval_requested", approver)["approve"])
    assert approval_of(sessions, other).decision == "approved"
    assert approval_of(sessions, vpn).decision == "pending"


# ---------------------------------------------------------------- the approval moved on


def test_an_approval_decided_in_the_portal_says_already_decided(desk, sessions, vpn, clock):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    desk.approve(approval_of(sessions, vpn).id, "bob")
    message = (f"^This approval of {vpn} was already decided: approved by bob on 2026-11-23 08:30 "
               "UTC. Nothing was changed.$")
    with sessions() as s, pytest.raises(Conflict, match=message):
        desk.email_action(s, KEY, tokens["reject"], clock())
    with pytest.raises(Conflict, match=message):
        desk.use_email_action(KEY, tokens["reject"], "No.")
    assert link_rows(sessions)[0].used_at is None and events(sessions, vpn, "email_action") == []


def test_a_cancelled_request_needs_no_approval(desk, sessions, vpn):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    desk.cancel(vpn, "alice", "No longer needed.")
    with pytest.raises(Conflict, match=f"^{vpn} is already cancelled: its approval is no longer "
                                       "needed. Nothing was changed.$"):
        desk.use_email_action(KEY, tokens["approve"])


def test_a_delegated_approval_is_no_longer_the_old_approvers_and_the_new_one_gets_links(
        desk, sessions, vpn):
    old = actions(sessions, vpn, "approval_requested", "bob")
    desk.delegate(approval_of(sessions, vpn).id, "bob", "carol", "Carol covers VPN.")
    with pytest.raises(Conflict, match=f"^This approval of {vpn} is no longer open \\(it was "
                                       "delegated\\). Nothing was changed.$"):
        desk.use_email_action(KEY, old["approve"])
    new = actions(sessions, vpn, "approval_requested", "carol")
    desk.use_email_action(KEY, new["approve"])
    appr = approval_of(sessions, vpn)
    assert (appr.approver_id, appr.decided_by_id, appr.decision) == ("carol", "carol", "approved")


def test_a_standing_delegate_decides_through_their_own_link_while_the_delegation_lasts(
        desk, sessions, answers, clock):
    desk.set_delegation("bob", "leo", clock(), clock() + timedelta(days=3))
    number = desk.submit("vpn-access", "alice", answers["vpn-access"]).number
    first = actions(sessions, number, "approval_requested", "leo")
    assert {r.person_id for r in link_rows(sessions)} == {"bob", "leo"}
    desk.use_email_action(KEY, first["approve"])
    appr = approval_of(sessions, number)
    assert (appr.approver_id, appr.decided_by_id) == ("bob", "leo")
    assert events(sessions, number, "approval_approved")[0].detail["on_behalf_of"] == "bob"
    second = desk.submit("vpn-access", "alice", answers["vpn-access"]).number
    tokens = actions(sessions, second, "approval_requested", "leo")
    clock.advance(days=3)  # the delegation is over; the link (7 days) is not
    with pytest.raises(NotAllowed, match=f"^leo is no longer an approver of {second}. Nothing was "
                                         "changed.$"):
        desk.use_email_action(KEY, tokens["approve"])
    assert approval_of(sessions, second).decision == "pending"


def test_a_reminder_carries_fresh_links(desk, sessions, clock, answers):
    a = answers["new-laptop"] | {"model": "pro16", "justification": "I render 3D models all day long."}
    number = desk.submit("new-laptop", "alice", a).number
    desk.use_email_action(KEY, actions(sessions, number, "approval_requested", "bob")["approve"])
    clock.advance(days=7)
    desk.run_due()
    reminder = mails(sessions, number, "approval_reminder")[0]
    [to] = reminder.payload["to"]
    person = next(r.person_id for r in link_rows(sessions)
                  if email_of(sessions, r.person_id) == to and r.used_at is None)
    tokens = actions(sessions, number, "approval_reminder", person)
    subject, text, html = render_email("approval_reminder", reminder.payload["context"])
    assert f"Approve: {BASE}/email-actions/{tokens['approve']}" in text
    desk.use_email_action(KEY, tokens["reject"], "Too expensive.")
    assert reload(sessions, number).state == "rejected"


# ---------------------------------------------------------------- confirm or reopen


@pytest.fixture
def resolved(desk, sessions) -> str:
    """Alice's VPN incident, resolved with its problem: the record-resolved email went out."""
    inc = desk.submit("report-incident", "alice", VPN).number
    problem = desk.create_problem("frank", [inc], {"short_description": "VPN drops",
                                                   "service": "network"}).number
    desk.resolve(problem, "heidi", "fixed", "Replaced the Wi-Fi controller firmware.")
    assert desk.resolve_linked_incidents(problem, "heidi") == [(inc, "resolved")]
    return str(inc)


def test_the_resolved_email_carries_confirm_and_reopen_links(desk, sessions, resolved):
    [mail] = mails(sessions, resolved, "record_resolved")
    links = mail.payload["context"]["actions"]
    subject, text, html = render_email("record_resolved", mail.payload["context"])
    assert f"Yes, confirm it is resolved: {links['confirm']}\nNo, reopen it: {links['reopen']}\n" in text
    assert f'href="{links["confirm"]}"' in (html or "") and f'href="{links["reopen"]}"' in (html or "")
    [row] = [r for r in link_rows(sessions) if r.kind == "resolution"]
    assert (row.person_id, row.approval_id) == ("alice", None)


def test_confirming_by_link_closes_the_record_and_a_second_click_is_refused(desk, sessions,
                                                                           resolved):
    tokens = actions(sessions, resolved, "record_resolved", "alice")
    desk.use_email_action(KEY, tokens["confirm"])
    req = reload(sessions, resolved)
    assert (req.status, req.outcome) == ("closed", "resolved")
    assert [e.actor_id for e in events(sessions, resolved, "resolution_confirmed")] == ["alice"]
    assert events(sessions, resolved, "email_action")[0].detail["action"] == "confirm"
    with pytest.raises(LinkGone, match=f"to confirm the resolution of {resolved}. Nothing was"):
        desk.use_email_action(KEY, tokens["reopen"], "Broken again.")


def test_reopening_by_link_needs_a_reason_and_goes_back_to_work(desk, sessions, resolved):
    tokens = actions(sessions, resolved, "record_resolved", "alice")
    with pytest.raises(InvalidInput):
        desk.use_email_action(KEY, tokens["reopen"], "")
    assert reload(sessions, resolved).resolved_at is not None
    desk.use_email_action(KEY, tokens["reopen"], "It dropped again this morning.")
    req = reload(sessions, resolved)
    assert (req.status, req.resolved_at, req.reopen_count) == ("open", None, 1)
    assert events(sessions, resolved, "reopened")[0].detail["reason"] == "It dropped again this morning."


def test_reopening_outside_the_window_says_so_and_changes_nothing(desk, sessions, acme, clock,
                                                                  resolved):
    tokens = actions(sessions, resolved, "record_resolved", "alice")
    narrow = replace(acme, settings=replace(acme.settings, reopen_window=Duration(1, "hour", False)))
    desk = RequestService(sessions, lambda: narrow, clock, base_url=BASE, secret_key=KEY)
    clock.advance(hours=2)
    with pytest.raises(Conflict, match=f"^{resolved} was resolved on .* and could be reopened until "
                                       ".*; open a new incident and mention it$"):
        desk.use_email_action(KEY, tokens["reopen"], "Broken again.")
    assert reload(sessions, resolved).resolved_at is not None
    assert [r.used_at for r in link_rows(sessions) if r.kind == "resolution"] == [None]


def test_a_record_closed_or_reopened_meanwhile_says_so(desk, sessions, resolved, clock):
    tokens = actions(sessions, resolved, "record_resolved", "alice")
    desk.reopen(resolved, "alice", "Still broken.")
    with sessions() as s, pytest.raises(Conflict, match=f"^{resolved} is no longer resolved \\(it "
                                                        "was reopened\\): there is nothing to "
                                                        "confirm or reopen. Nothing was changed.$"):
        desk.email_action(s, KEY, tokens["confirm"], clock())
    desk.resolve(resolved, "frank", "fixed", "Replaced the access point.")
    desk.confirm_resolution(resolved, "alice")
    with pytest.raises(Conflict, match=f"^{resolved} is already closed \\(resolved\\): there is "
                                       "nothing to confirm or reopen; if the trouble is back, open "
                                       "a new incident and mention it. Nothing was changed.$"):
        desk.use_email_action(KEY, tokens["reopen"], "Broken again.")
    assert reload(sessions, resolved).reopen_count == 1


def test_many_clicks_at_once_decide_once(desk, sessions, vpn):
    tokens = actions(sessions, vpn, "approval_requested", "bob")
    outcomes: list[str] = []

    def click(i: int) -> None:
        try:
            desk.use_email_action(KEY, tokens["approve" if i % 2 else "reject"], "Clicked.")
            outcomes.append("done")
        except (LinkGone, Conflict, Unavailable) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("done") == 1 and len(outcomes) == 8
    assert len(events(sessions, vpn, "email_action")) == 1
    decided = events(sessions, vpn, "approval_approved") + events(sessions, vpn, "approval_rejected")
    assert len(decided) == 1
    assert link_rows(sessions)[0].used_action == events(sessions, vpn, "email_action")[0].detail["action"]
