"""Order guides in the portal (web/orders.py): one form, one order page, all or nothing."""

from __future__ import annotations

import html

from sqlalchemy import func, select

from engine.models import Order, Request
from tests.web.conftest import csrf_token

SHARED = {"cost_center": "CC-1234", "needed_by": "2027-01-04", "team": "engineer"}
LAPTOP = {"new-laptop--model": "std14", "new-laptop--building": "ams-hq", "new-laptop--floor": "4"}
ACCESS = {"system-access--system": "crm", "system-access--role": "crm-read",
          "system-access--reason": "I support the sales team with their pipeline."}
PHONE = {"mobile-phone--device": "pixel", "mobile-phone--data_plan": "10gb",
         "mobile-phone--building": "ams-hq", "mobile-phone--floor": "3"}


def text(response) -> str:
    return response.get_data(as_text=True)


def counts(app) -> tuple[int, int]:
    with app.app_context():
        from web.extensions import db

        return (db.session.scalar(select(func.count(Request.id))) or 0,
                db.session.scalar(select(func.count(Order.id))) or 0)


def order(client, data: dict[str, str]):
    token = csrf_token(text(client.get("/guides/new-hire")))
    return client.post("/guides/new-hire", data={"csrf_token": token, **data})


def test_the_catalog_lists_the_guide_as_an_order_guide(client, auth):
    auth.login("alice")
    page = text(client.get("/"))
    card = page[page.index('href="/guides/new-hire"'):]
    assert card.startswith('href="/guides/new-hire">New hire</a>')
    assert '<span class="badge text-bg-primary df-kind">Order guide</span>' in card[:600]


def test_the_guide_asks_shared_questions_once_and_each_items_own_fields(client, auth):
    auth.login("alice")
    page = text(client.get("/guides/new-hire"))
    assert page.count('name="cost_center"') == 1
    assert 'name="new-laptop--cost_center"' not in page
    assert 'name="new-laptop--model"' in page and 'name="system-access--reason"' in page
    assert 'name="system-access--level"' not in page  # fixed by the guide
    assert "Included when guide.team == &#39;sales&#39;." in page


def test_ordering_a_guide_creates_one_order_of_linked_records(client, auth, app):
    auth.login("alice")
    response = order(client, {**SHARED, **LAPTOP, **ACCESS, **PHONE})
    assert response.status_code == 302
    assert response.headers["Location"] == "/orders/ORD-000001"
    assert counts(app) == (2, 1)  # an engineer gets no phone: its answers are dropped
    page = text(client.get("/orders/ORD-000001"))
    assert "ORD-000001: New hire" in page
    assert "0 of 2 done" in page
    assert '<a href="/requests/REQ-000001">REQ-000001</a></td>\n        <td>New laptop</td>' in page
    assert "Access to a business system" in page
    record = text(client.get("/requests/REQ-000002"))
    assert '<a href="/orders/ORD-000001">Part of order ORD-000001</a>' in record


def test_the_condition_includes_the_phone_for_sales(client, auth, app):
    auth.login("alice")
    response = order(client, {**SHARED, "team": "sales", **LAPTOP, **ACCESS, **PHONE})
    assert response.status_code == 302
    assert counts(app) == (3, 1)
    assert "Mobile phone" in text(client.get(response.headers["Location"]))


def test_an_invalid_item_answer_shows_next_to_its_field_and_creates_nothing(client, auth, app):
    auth.login("alice")
    response = order(client, {**SHARED, **LAPTOP, **ACCESS, "system-access--reason": "short"})
    page = text(response)
    assert response.status_code == 422
    assert ('<a class="alert-link" href="#system-access--reason">Access to a business system: '
            'Why do you need this access?</a>: Must be at least 20 characters.</li>') in page
    assert counts(app) == (0, 0)


def test_an_invalid_shared_answer_shows_next_to_its_question_and_creates_nothing(client, auth, app):
    auth.login("alice")
    response = order(client, {**SHARED, "cost_center": "1234", **LAPTOP, **ACCESS})
    assert response.status_code == 422
    assert ('<a class="alert-link" href="#cost_center">Cost center</a>: '
            f'{html.escape("Must match the pattern ^CC-[0-9]{4}$.")}</li>') in text(response)
    assert counts(app) == (0, 0)


def test_another_person_does_not_find_the_order(client, auth):
    auth.login("alice")
    assert order(client, {**SHARED, **LAPTOP, **ACCESS}).status_code == 302
    auth.logout()
    auth.login("peter")
    assert client.get("/orders/ORD-000001").status_code == 404
    assert client.get("/guides/no-such-guide").status_code == 404
