""""Why?" on the request page and the approver's view: approver, branch, priority and SLA reasons."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.models import Approval
from tests.acme import ACME_ANSWERS

LAPTOP = {**ACME_ANSWERS["new-laptop"], "floor": 3}
#: Friday 1 May 2026, 15:00 in Amsterdam; Tuesday 5 May is Liberation Day in acme's settings
FRIDAY = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)


def text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


@pytest.fixture
def friday(service):
    service.clock = service.unit.clock = lambda: FRIDAY
    return FRIDAY


def test_the_request_page_says_why_the_resolution_is_due_then(client, auth, service, friday):
    number = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert ("<li>Resolution due Mon 11 May 2026 15:00: 5 business days (workflow laptop-request's "
            "resolution target) from Fri 1 May 2026 15:00, counted on business hours Mon–Fri "
            "09:00–17:00 Europe/Amsterdam; not counted: Sat 2 May (not a working day), Sun 3 May "
            "(not a working day), Tue 5 May (Liberation Day), Sat 9 May (not a working day), "
            "Sun 10 May (not a working day)</li>") in page


def test_the_request_page_says_why_this_approver_and_why_this_branch(client, auth, service, friday):
    number = service.submit("new-laptop", "alice", {**LAPTOP, "model": "pro16", "justification":
                                                    "I render video for customer demos daily."}).number
    with service.sessions() as s:
        first = s.scalar(select(Approval.id).where(Approval.approver_id == "bob"))
    service.approve(first, "bob")
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert ("<summary>Why?</summary>Bob Bakker is who `requester.manager` named for this "
            "request</details>") in page
    assert ("Why: Decided to director_approval because `form.model == 'pro16'` held "
            "(form.model = 'pro16')</div>") in page
    assert ("<summary>Why?</summary>Carol de Vries holds the role director, which the workflow "
            "names</details>") in page


def test_the_standard_model_takes_the_last_route_and_says_why(client, auth, service, friday):
    number = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    with service.sessions() as s:
        first = s.scalar(select(Approval.id).where(Approval.approver_id == "bob"))
    service.approve(first, "bob")
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert ("Why: Decided to prepare, the last route, because no condition held: "
            "`form.model == 'pro16'` did not hold (form.model = 'std14'), so not "
            "director_approval</div>") in page


def test_the_approver_sees_why_they_were_asked(client, auth, service, friday):
    service.submit("emergency-change", "oscar", dict(ACME_ANSWERS["emergency-change"]))
    with service.sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.approver_id == "dana"))
    assert appr is not None
    auth.login("dana")
    page = text(client.get(f"/approvals/{appr.id}"))
    assert ("<h2 class=\"h6\" id=\"why-title\">Why you?</h2> <p class=\"mb-0\">`person:oscar` named "
            "the requester, the person the request is for, or someone inactive, so their next "
            "manager up, Dana Visser, decides.</p>") in page


def test_a_delegated_approval_says_who_passed_it_on(client, auth, service, friday):
    service.submit("new-laptop", "alice", dict(LAPTOP))
    with service.sessions() as s:
        first = s.scalar(select(Approval.id).where(Approval.approver_id == "bob"))
    service.delegate(first, "bob", "carol")
    with service.sessions() as s:
        new = s.scalar(select(Approval.id).where(Approval.approver_id == "carol"))
    auth.login("carol")
    page = text(client.get(f"/approvals/{new}"))
    assert ("<p class=\"mb-0\">Carol de Vries decides because Bob Bakker delegated the approval "
            "to them.</p>") in page


def test_a_question_to_the_requester_says_why_the_clocks_stopped(client, auth, service, friday):
    number = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"])).number
    service.ask_requester(number, "frank", "Which floor are you on?")
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert ("<li>The clocks are paused since Fri 1 May 2026 15:00: waiting for the requester to "
            "answer a question; the due times move later by the business time spent waiting</li>"
            ) in page
