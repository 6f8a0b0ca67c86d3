"""The one-click links in emails, through the test client: a GET only shows, a POST acts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from markupsafe import escape
from sqlalchemy import select, update

from engine.mail import render_email
from engine.models import Approval, AuditEvent, EmailAction, OutboxMessage, Person, Request
from tests.acme import ACME_ANSWERS
from tests.web.conftest import csrf_token

VPN = {"short_description": "VPN drops every 30 minutes", "affected_service": "network",
       "description": "The VPN disconnects every half hour while on the office Wi-Fi.",
       "impact": "low", "urgency": "medium", "contact_email": "alice@acme.example"}


def links(service, number: str, event: str, person: str) -> dict[str, str]:
    """The paths of the links in the last `event` email to `person` (base URL aside)."""
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        to = s.get(Person, person).email
        mail = [m for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.request_id == req.id, OutboxMessage.event == event)
            .order_by(OutboxMessage.id)) if m.payload["to"] == [to]][-1]
    context = mail.payload["context"]
    subject, text, html = render_email(event, context)
    found = {}
    for action, url in context["actions"].items():
        if action != "expires_at":
            assert url in text and f'href="{url}"' in (html or "")  # the email shows each link
            found[action] = "/email-actions/" + url.rsplit("/email-actions/", 1)[1]
    return found


def approval(service, number: str) -> Approval:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        found = s.scalars(select(Approval).where(Approval.request_id == req.id)
                          .order_by(Approval.id)).all()[-1]
        s.expunge(found)
        return found


def audit_rows(service) -> int:
    with service.sessions() as s:
        return len(s.scalars(select(AuditEvent.id)).all())


def vpn_request(service) -> str:
    return str(service.submit("vpn-access", "alice", dict(ACME_ANSWERS["vpn-access"])).number)


def test_opening_the_approve_link_shows_a_page_and_only_its_post_approves_once(client, service):
    number = vpn_request(service)
    url = links(service, number, "approval_requested", "bob")["approve"]
    before = audit_rows(service)
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Approve {number}?" in html and "You act as Bob" in html
    assert client.get(url).status_code == 200  # a mail scanner's second look changes nothing
    assert audit_rows(service) == before and approval(service, number).decision == "pending"
    assert client.post(url, data={"comment": "ok"}).status_code == 400  # no CSRF token
    assert approval(service, number).decision == "pending"
    done = client.post(url, data={"csrf_token": csrf_token(html), "comment": "Fine by me."})
    assert done.status_code == 200
    assert f"You approved {number}." in done.get_data(as_text=True)
    decided = approval(service, number)
    assert (decided.decision, decided.decided_by_id, decided.comment) == ("approved", "bob", "Fine by me.")
    again = client.get(url)
    assert again.status_code == 410
    assert "This link was already used: it was used on " in again.get_data(as_text=True)
    after = audit_rows(service)
    assert client.post(url, data={"csrf_token": csrf_token(html)}).status_code == 410
    assert audit_rows(service) == after


def test_reject_asks_why_and_an_empty_answer_changes_nothing(client, service):
    number = vpn_request(service)
    url = links(service, number, "approval_requested", "bob")["reject"]
    html = client.get(url).get_data(as_text=True)
    assert f"Reject {number}?" in html and 'name="comment"' in html
    empty = client.post(url, data={"csrf_token": csrf_token(html), "comment": "  "})
    assert empty.status_code == 422
    assert "Say why the request is rejected." in empty.get_data(as_text=True)
    assert approval(service, number).decision == "pending"
    done = client.post(url, data={"csrf_token": csrf_token(html), "comment": "Not for now."})
    assert done.status_code == 200 and f"You rejected {number}." in done.get_data(as_text=True)
    assert approval(service, number).decision == "rejected"


def test_a_forged_or_expired_link_is_a_clear_page_and_changes_nothing(client, service):
    number = vpn_request(service)
    url = links(service, number, "approval_requested", "bob")["approve"]
    forged = client.get(url[:-3] + ("abc" if not url.endswith("abc") else "xyz"))
    assert forged.status_code == 400
    assert "This link is not valid: it was changed or not made by this service desk." \
        in forged.get_data(as_text=True)
    html = client.get(url).get_data(as_text=True)
    with service.sessions.begin() as s:
        s.execute(update(EmailAction).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.post(url, data={"csrf_token": csrf_token(html)})
    assert expired.status_code == 410
    assert "This link has expired: it was valid until " in expired.get_data(as_text=True)
    assert approval(service, number).decision == "pending"


def test_a_link_for_an_approval_decided_in_the_portal_says_already_decided(client, service):
    number = vpn_request(service)
    url = links(service, number, "approval_requested", "bob")["approve"]
    html = client.get(url).get_data(as_text=True)
    service.reject(approval(service, number).id, "bob", "No budget.")
    for response in (client.get(url), client.post(url, data={"csrf_token": csrf_token(html)})):
        assert response.status_code == 409
        assert f"This approval of {number} was already decided: rejected by bob" \
            in response.get_data(as_text=True)
    assert approval(service, number).decision == "rejected"


def resolved_incident(service) -> str:
    inc = str(service.submit("report-incident", "alice", VPN).number)
    problem = service.create_problem("frank", [inc], {"short_description": "VPN drops",
                                                      "service": "network"}).number
    service.resolve(problem, "heidi", "fixed", "Replaced the Wi-Fi controller firmware.")
    service.resolve_linked_incidents(problem, "heidi")
    return inc


def test_the_resolved_email_confirms_by_link(client, service):
    number = resolved_incident(service)
    url = links(service, number, "record_resolved", "alice")["confirm"]
    html = client.get(url).get_data(as_text=True)
    assert f"Is {number} resolved for you?" in html
    assert "Replaced the Wi-Fi controller firmware." in html
    done = client.post(url, data={"csrf_token": csrf_token(html)})
    assert done.status_code == 200
    assert f"You confirmed the resolution of {number}." in done.get_data(as_text=True)
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        assert (req.status, req.outcome) == ("closed", "resolved")


def test_the_resolved_email_reopens_by_link_with_a_reason(client, service):
    number = resolved_incident(service)
    url = links(service, number, "record_resolved", "alice")["reopen"]
    html = client.get(url).get_data(as_text=True)
    assert f"Reopen {number}?" in html and 'name="reason"' in html
    empty = client.post(url, data={"csrf_token": csrf_token(html), "reason": ""})
    assert empty.status_code == 422
    done = client.post(url, data={"csrf_token": csrf_token(html), "reason": "It dropped again."})
    assert done.status_code == 200 and f"You reopened {number}." in done.get_data(as_text=True)
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        assert (req.status, req.resolved_at, req.reopen_count) == ("open", None, 1)
    assert str(escape("This link was already used")) in client.get(url).get_data(as_text=True)
