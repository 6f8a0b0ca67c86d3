"""The approver inbox: pending approvals, decisions, bulk approval, delegation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.models import Approval, AuditEvent, Delegation, Request
from tests.acme import ACME_ANSWERS

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
ACME_TZ = ZoneInfo("Europe/Amsterdam")
RELOAD = "The page is out of date or incomplete; reload it and try again."


def order_laptop(service, who: str = "alice", **answers) -> Request:
    return service.submit("new-laptop", who, {**LAPTOP, **answers})


def approval_of(service, number: str, approver: str | None = None) -> Approval:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        q = select(Approval).where(Approval.request_id == req.id, Approval.decision == "pending")
        if approver:
            q = q.where(Approval.approver_id == approver)
        return s.scalars(q).one()


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def local(dt: datetime) -> str:
    return dt.astimezone(ACME_TZ).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def laptop(service) -> Request:
    return order_laptop(service)


# ---------------------------------------------------------------- the inbox

def test_bob_sees_alices_laptop_with_its_key_answers(client, auth, laptop, service):
    auth.login("bob")
    html = client.get("/approvals").get_data(as_text=True)
    appr = approval_of(service, laptop.number)
    assert f'<a href="/approvals/{appr.id}">REQ-000001</a>' in html
    assert "New laptop" in html
    assert "Standard 14-inch (16 GB RAM, 512 GB SSD)" in html
    assert re.search(r">Cost center</dt>\s*<dd[^>]*>CC-1234</dd>", html)
    assert re.search(r">Deliver to</dt>\s*<dd[^>]*>Amsterdam HQ \(Zuidas\)</dd>", html)
    assert "Alice Jansen" in html
    assert "1 of 1 needed" in html
    assert '<span class="badge text-bg-warning" aria-label="1 waiting">1</span>' in html


def test_inbox_shows_at_most_four_key_answers(client, auth, service):
    order_laptop(service, keyboard_layout="nl", replaces_asset="ACME-001234")
    auth.login("bob")
    html = client.get("/approvals").get_data(as_text=True)
    assert html.count("<dt ") == 4
    assert "Replaces laptop (asset tag)" in html
    assert "Dutch" in html
    assert "Amsterdam HQ (Zuidas)" not in html  # the fifth answer is on the approval page


def test_an_empty_inbox(client, auth):
    auth.login("carol")
    html = client.get("/approvals").get_data(as_text=True)
    assert "Nothing is waiting for you." in html
    assert 'aria-label="0 waiting"' not in html


def test_policy_counts_every_approver_of_a_group_approval(client, auth, service):
    req = service.submit("normal-change", "heidi", {
        "change_title": "Upgrade the mail relay", "description": "Upgrade the outbound mail "
        "relay to the current release to fix delivery delays.",
        "affected_systems": ["crm"], "implementer": "heidi", "planned_date": "2026-12-01"})
    with service.sessions() as s:
        rows = list(s.scalars(select(Approval).where(Approval.request_id == req.id,
                                                     Approval.decision == "pending")))
    assert rows, "the change goes to the change board"
    person = sorted(r.approver_id for r in rows)[0]
    auth.login(person)
    html = client.get("/approvals").get_data(as_text=True)
    policy = rows[0].policy
    need = len(rows) if policy == "all" else 1 if policy == "any" else int(policy.split(":")[1])
    assert f"{need} of {len(rows)} needed" in html


# ---------------------------------------------------------------- deciding

def test_approve_from_the_approval_page(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    page = client.get(f"/approvals/{appr.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Waiting for your manager" in html
    assert '<a href="/requests/REQ-000001">Open the request page</a>' in html
    assert "Now: Waiting for your manager by Alice Jansen" in " ".join(html.split())
    assert f'name="decision-seen_version" type="hidden" value="{laptop.lock_version}"' in html
    response = post(f"/approvals/{appr.id}/approve",
                    {"decision-seen_version": laptop.lock_version, "decision-comment": "Fine"},
                    page=f"/approvals/{appr.id}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/approvals"
    assert reload(service, laptop.number).state == "prepare"
    html = client.get("/approvals").get_data(as_text=True)
    assert "Approved REQ-000001." in html
    assert "Nothing is waiting for you." in html
    with service.sessions() as s:
        done = s.get(Approval, appr.id)
        assert (done.decision, done.decided_by_id, done.comment) == ("approved", "bob", "Fine")


def test_reject_needs_a_comment(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    url = f"/approvals/{appr.id}/reject"
    response = post(url, {"decision-seen_version": laptop.lock_version, "decision-comment": "  "},
                    page=f"/approvals/{appr.id}")
    assert response.status_code == 422
    assert ('<div id="decision-comment-error" class="invalid-feedback d-block" role="alert">'
            "Say why the request is rejected.</div>") in response.get_data(as_text=True)
    assert reload(service, laptop.number).state == "manager_approval"
    response = post(url, {"decision-seen_version": laptop.lock_version,
                          "decision-comment": "One laptop per person."}, page="/approvals")
    assert response.status_code == 302
    done = reload(service, laptop.number)
    assert (done.status, done.outcome) == ("closed", "rejected")


def test_a_decided_approval_shows_no_forms(client, auth, laptop, service):
    appr = approval_of(service, laptop.number)
    service.approve(appr.id, "bob")
    auth.login("bob")
    html = client.get(f"/approvals/{appr.id}").get_data(as_text=True)
    assert "This approval is approved; nothing is waiting for you here." in html
    assert "/approve" not in html


def test_a_stale_page_gets_409(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    service.comment(laptop.number, "alice", "Any news?")  # the request moved on
    auth.login("bob")
    response = post(f"/approvals/{appr.id}/approve",
                    {"decision-seen_version": laptop.lock_version}, page="/approvals")
    assert response.status_code == 409
    assert "REQ-000001 changed since you loaded it" in response.get_data(as_text=True)
    assert reload(service, laptop.number).state == "manager_approval"


def test_a_stranger_gets_404_everywhere(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("peter")
    assert client.get(f"/approvals/{appr.id}").status_code == 404
    for action, data in (("approve", {"decision-seen_version": laptop.lock_version}),
                         ("reject", {"decision-seen_version": laptop.lock_version,
                                     "decision-comment": "no"}),
                         ("delegate", {"delegate-seen_version": laptop.lock_version,
                                       "delegate-to": "peter"})):
        assert post(f"/approvals/{appr.id}/{action}", data, page="/approvals").status_code == 404
    assert reload(service, laptop.number).state == "manager_approval"


def test_alice_cannot_approve_her_own_request(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("alice")
    html = client.get(f"/approvals/{appr.id}").get_data(as_text=True)
    assert "This is your own request: someone else decides on it." in html
    response = post(f"/approvals/{appr.id}/approve",
                    {"decision-seen_version": laptop.lock_version}, page="/approvals")
    assert response.status_code == 403
    assert "alice cannot decide on their own request REQ-000001" in response.get_data(as_text=True)
    assert reload(service, laptop.number).state == "manager_approval"


@pytest.mark.parametrize(("data", "status", "text"), [
    ({}, 422, RELOAD),
    ({"decision-seen_version": "two"}, 422, RELOAD),
    ({"decision-seen_version": "current", "decision-comment": "x" * 10_001}, 422,
     "Must be at most 10000 characters."),
])
def test_malformed_decisions(client, auth, post, laptop, service, data, status, text):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    data = {k: str(laptop.lock_version) if v == "current" else v for k, v in data.items()}
    response = post(f"/approvals/{appr.id}/approve", data, page="/approvals")
    assert response.status_code == status
    assert text in response.get_data(as_text=True)
    assert reload(service, laptop.number).state == "manager_approval"


def test_unknown_approvals_and_missing_csrf(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    assert client.get("/approvals/999999").status_code == 404
    assert client.get(f"/approvals/{10**30}").status_code == 404
    assert client.get("/approvals/abc").status_code == 404
    assert post(f"/approvals/{10**30}/approve", {"decision-seen_version": 2}).status_code == 404
    response = client.post(f"/approvals/{appr.id}/approve",
                           data={"decision-seen_version": laptop.lock_version})
    assert response.status_code == 400
    assert "The form expired or did not come from this site." in response.get_data(as_text=True)
    assert client.get(f"/approvals/{appr.id}/approve").status_code == 405


def test_an_admin_cannot_hand_on_the_approval_of_their_own_request(client, auth, post, service):
    """Segregation of duties: oscar (an admin) may delegate approvals, but not of his own request."""
    req = order_laptop(service, "oscar")
    appr = approval_of(service, req.number)
    assert appr.approver_id == "dana"
    auth.login("oscar")
    html = client.get(f"/approvals/{appr.id}").get_data(as_text=True)
    assert "This is your own request: someone else decides on it." in html
    assert "Hand it to someone else" not in html
    response = post(f"/approvals/{appr.id}/delegate",
                    {"delegate-seen_version": req.lock_version, "delegate-to": "erin"},
                    page="/approvals")
    assert response.status_code == 403
    assert (f"oscar cannot choose who approves their own request {req.number}"
            in response.get_data(as_text=True))
    assert approval_of(service, req.number).approver_id == "dana"
    with service.sessions() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.event == "security_denied")).one()
    assert (denied.actor_id, denied.detail["reason"], denied.detail["approval"]) == (
        "oscar", "self-delegation", appr.id)


def test_a_requester_never_finds_their_own_request_in_their_inbox(client, auth, service):
    """bob and victor let alice decide for them while away; her own laptop is not hers to decide."""
    now = datetime.now(ACME_TZ)
    for away in ("bob", "victor"):
        service.set_delegation(away, "alice", now - timedelta(hours=1), now + timedelta(days=1))
    mine = order_laptop(service, "alice")  # bob, her manager, approves it
    theirs = order_laptop(service, "peter")  # victor, his manager, approves it
    auth.login("alice")
    html = client.get("/approvals").get_data(as_text=True)
    assert f'<a href="/approvals/{approval_of(service, theirs.number).id}">{theirs.number}</a>' in html
    assert mine.number not in html
    assert '<span class="badge text-bg-warning" aria-label="1 waiting">1</span>' in html


# ---------------------------------------------------------------- bulk approval

def test_bulk_approval_reports_each_row(client, auth, post, service):
    reqs = [order_laptop(service) for _ in range(3)]
    auth.login("bob")
    inbox = client.get("/approvals").get_data(as_text=True)
    seen = dict(re.findall(r'name="seen-(\d+)" value="(\d+)"', inbox))
    assert len(seen) == 3
    ids = [str(approval_of(service, r.number).id) for r in reqs]
    service.approve(int(ids[1]), "bob")  # decided in another tab after the inbox was loaded
    response = post("/approvals/bulk", {"ids": ids, **{f"seen-{i}": v for i, v in seen.items()}},
                    page="/approvals")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 of 3 approved." in html
    results = re.findall(r'<span class="badge text-bg-\w+">([\w ]+)</span>', html)
    assert results == ["approved", "conflict", "approved"]
    assert "REQ-000002 changed since you loaded it" in html
    assert 'waiting">' not in html  # the nav badge counts what is left: nothing
    assert [reload(service, r.number).state for r in reqs] == ["prepare"] * 3


def test_bulk_rows_someone_may_not_decide(client, auth, post, service, laptop):
    mine = approval_of(service, laptop.number)
    bobs = service.submit("new-laptop", "bob", LAPTOP)
    theirs = approval_of(service, bobs.number)  # carol's
    auth.login("bob")
    response = post("/approvals/bulk", {"ids": [str(mine.id), str(theirs.id), "999999"],
                                        f"seen-{mine.id}": laptop.lock_version,
                                        f"seen-{theirs.id}": bobs.lock_version}, page="/approvals")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    results = re.findall(r'<span class="badge text-bg-\w+">([\w ]+)</span>', html)
    assert results == ["approved", "not allowed", "not found"]
    assert "bob cannot decide on their own request REQ-000002" in html
    assert "Approval 999999" in html


@pytest.mark.parametrize(("data", "text"), [
    ({}, "Select at least one approval."),
    ({"ids": ["abc"]}, "Select between 1 and 100 approvals from the list."),
    ({"ids": ["\u00b2"]}, "Select between 1 and 100 approvals from the list."),
    ({"ids": [str(10**30)]}, "Select between 1 and 100 approvals from the list."),
    ({"ids": [str(i) for i in range(1, 102)]}, "Select between 1 and 100 approvals from the list."),
])
def test_malformed_bulk_approvals(client, auth, post, laptop, data, text):
    auth.login("bob")
    response = post("/approvals/bulk", data, page="/approvals")
    assert response.status_code == 422
    assert text in response.get_data(as_text=True)


def test_bulk_without_the_seen_version_approves_nothing(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    html = post("/approvals/bulk", {"ids": [str(appr.id)]}, page="/approvals").get_data(as_text=True)
    assert "0 of 1 approved." in html
    assert "the page did not say which version you saw; reload and try again" in html
    assert reload(service, laptop.number).state == "manager_approval"


# ---------------------------------------------------------------- delegating

def test_delegate_one_approval(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    auth.login("bob")
    url = f"/approvals/{appr.id}/delegate"
    response = post(url, {"delegate-seen_version": laptop.lock_version, "delegate-to": "alice"},
                    page="/approvals")
    assert response.status_code == 422
    assert ('<div id="delegate-to-error" class="invalid-feedback d-block" role="alert">'
            "Pick someone other than the requester and yourself.</div>") in response.get_data(as_text=True)
    response = post(url, {"delegate-seen_version": laptop.lock_version, "delegate-to": "dana",
                          "delegate-comment": "I am on leave"}, page="/approvals")
    assert response.status_code == 302
    assert "REQ-000001 is now with Dana Visser." in client.get("/approvals").get_data(as_text=True)
    auth.logout()
    auth.login("dana")
    assert "REQ-000001" in client.get("/approvals").get_data(as_text=True)
    assert approval_of(service, laptop.number).approver_id == "dana"


def test_delegating_from_a_stale_page_gets_409(client, auth, post, laptop, service):
    appr = approval_of(service, laptop.number)
    service.comment(laptop.number, "alice", "Any news?")
    auth.login("bob")
    response = post(f"/approvals/{appr.id}/delegate",
                    {"delegate-seen_version": laptop.lock_version, "delegate-to": "dana"})
    assert response.status_code == 409
    assert approval_of(service, laptop.number).approver_id == "bob"


def test_delegation_window_lets_the_delegate_decide(client, auth, post, laptop, service):
    auth.login("bob")
    start = datetime.now(ACME_TZ) - timedelta(hours=1)
    response = post("/approvals/delegation", {"delegate": "carol", "starts_at": local(start),
                                              "ends_at": local(start + timedelta(days=7))},
                    page="/approvals/delegation")
    assert response.status_code == 302
    html = client.get("/approvals/delegation").get_data(as_text=True)
    assert "Delegation saved." in html
    assert re.search(r"<td>Carol de Vries</td>\s*<td>[^<]+</td>\s*<td>[^<]+</td>\s*"
                     r'<td><span class="badge text-bg-success">active</span>', html)
    with service.sessions() as s:
        d = s.scalars(select(Delegation)).one()
        assert (d.person_id, d.delegate_id) == ("bob", "carol")
        assert d.starts_at == start.replace(second=0, microsecond=0)
    auth.logout()
    auth.login("carol")
    inbox = client.get("/approvals").get_data(as_text=True)
    assert "REQ-000001" in inbox
    assert '<span class="badge text-bg-info">for Bob Bakker</span>' in inbox
    mine = client.get("/approvals/delegation").get_data(as_text=True)
    assert "You decide for</h2>" in mine
    assert "<li>Bob Bakker, " in mine
    appr = approval_of(service, laptop.number)
    page = client.get(f"/approvals/{appr.id}").get_data(as_text=True)
    assert "You decide for Bob Bakker, who delegated to you." in page
    response = post(f"/approvals/{appr.id}/approve",
                    {"decision-seen_version": laptop.lock_version}, page="/approvals")
    assert response.status_code == 302
    assert reload(service, laptop.number).state == "prepare"
    with service.sessions() as s:
        assert s.get(Approval, appr.id).decided_by_id == "carol"


def test_a_future_delegation_is_planned_not_active(client, auth, post, laptop, service):
    auth.login("bob")
    start = datetime.now(ACME_TZ) + timedelta(days=2)
    post("/approvals/delegation", {"delegate": "carol", "starts_at": local(start),
                                   "ends_at": local(start + timedelta(days=1))},
         page="/approvals/delegation")
    html = client.get("/approvals/delegation").get_data(as_text=True)
    assert '<span class="badge text-bg-secondary">planned</span>' in html
    auth.logout()
    auth.login("carol")
    assert "Nothing is waiting for you." in client.get("/approvals").get_data(as_text=True)


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"delegate": "", "starts_at": "2026-12-01T09:00", "ends_at": "2026-12-02T09:00"},
     "delegate", "Pick a person."),
    ({"delegate": "carol", "starts_at": "2026-12-02T09:00", "ends_at": "2026-12-01T09:00"},
     "ends_at", "Must be after the start."),
    ({"delegate": "carol", "starts_at": "tomorrow", "ends_at": "2026-12-01T09:00"},
     "starts_at", "Not a valid datetime value."),
    ({"delegate": "carol", "starts_at": "2026-12-01T09:00"}, "ends_at", "Give an end."),
    ({"delegate": "bob", "starts_at": "2026-12-01T09:00", "ends_at": "2026-12-02T09:00"},
     "delegate", "Pick another active person."),
    ({"delegate": "nobody", "starts_at": "2026-12-01T09:00", "ends_at": "2026-12-02T09:00"},
     "delegate", "Pick another active person."),
])
def test_delegation_errors_are_inline(client, auth, post, service, data, field, message):
    auth.login("bob")
    response = post("/approvals/delegation", data, page="/approvals/delegation")
    assert response.status_code == 422
    assert (f'<div id="{field}-error" class="invalid-feedback d-block" role="alert">{message}</div>'
            in response.get_data(as_text=True))
    with service.sessions() as s:
        assert s.scalars(select(Delegation)).all() == []
