"""Long queues and inboxes: counted up to 1,000 (engine.queries.COUNT_CAP), then "more than"."""

from __future__ import annotations

import re

from sqlalchemy import insert, select

from engine.models import Approval, Task
from tests.web.test_api import Api, cli_token
from tests.web.test_tasks import LAPTOP, incident

COPIES = 1030


def copies(service, model, row_id: int) -> None:
    """COPIES more rows like `row_id`, in one statement."""
    with service.sessions.begin() as s:
        row = s.get(model, row_id)
        values = {c.key: getattr(row, c.key) for c in model.__table__.columns if c.key != "id"}
        s.execute(insert(model), [values] * COPIES)


def page_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="page-link"[^>]*>(\d+)<', html)]


def test_a_long_queue_says_more_than_1000_and_pages_on(client, auth, service):
    req = incident(service)
    with service.sessions() as s:
        task = s.scalar(select(Task).where(Task.request_id == req.id))
    copies(service, Task, task.id)
    auth.login("frank")
    html = client.get("/queues/service-desk").get_data(as_text=True)
    assert "More than 1,000 open tasks." in html
    assert max(page_links(html)) == 41  # 1,001 counted
    html = client.get("/queues/service-desk?page=41").get_data(as_text=True)
    assert "More than 1,025 open tasks." in html and max(page_links(html)) == 42
    html = client.get("/queues/service-desk?page=42").get_data(as_text=True)
    assert "1,031 open tasks." in html and "More than" not in html
    assert len(re.findall(r'<td><a href="/requests/', html)) == 6
    html = client.get("/queues/service-desk?assignee=mine").get_data(as_text=True)
    assert "No open tasks here with these filters." in html


def test_a_short_queue_is_counted_exactly(client, auth, service):
    incident(service)
    auth.login("frank")
    assert "1 open task." in client.get("/queues/service-desk").get_data(as_text=True)


def test_a_long_inbox_says_more_than_1000(client, auth, service):
    req = service.submit("new-laptop", "alice", LAPTOP)
    with service.sessions() as s:
        approval = s.scalar(select(Approval).where(Approval.request_id == req.id))
        approver = approval.approver_id
    copies(service, Approval, approval.id)
    auth.login(approver)
    html = client.get("/approvals").get_data(as_text=True)
    assert "More than 1,000 waiting." in html
    assert max(page_links(html)) == 41
    assert ('<span class="badge text-bg-warning" aria-label="more than 1,000 waiting">1,000+</span>'
            in html)


def test_the_api_says_when_the_count_stopped(client, runner, app, service):
    incident(service)
    with service.sessions() as s:
        task = s.scalar(select(Task).where(Task.queue == "service-desk"))
    copies(service, Task, task.id)
    frank = Api(client, cli_token(runner, app, "frank"))
    body = frank.get("/api/v1/queues/service-desk/tasks").get_json()
    assert (body["total"], body["more"], body["pages"]) == (1001, True, 41)
    body = frank.get("/api/v1/queues/service-desk/tasks?page=42").get_json()
    assert (body["total"], body["more"], body["page"]) == (1031, False, 42)
