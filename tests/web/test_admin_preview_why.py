"""Admin → Items → Preview: why each field is shown or hidden, required or optional."""

from __future__ import annotations

import html
import re
import shutil

import pytest
from sqlalchemy import func, select

from engine.models import Request
from tests.web.conftest import ACME, Auth, make_app

PURCHASE = """\
kind: CatalogItem
id: purchase
name: Purchase
category: Access
summary: Buy something for the team.
owner: identity
workflow: identity-request
form:
  - name: cost_center
    label: Cost center
    type: string
    required: true
  - name: cost
    label: Cost
    type: integer
  - name: justification
    label: Justification
    type: textarea
    required_if: "form.cost > 1000"
  - name: urgent
    label: Urgent
    type: boolean
  - name: manager_note
    label: Note for your manager
    type: string
    show_if: "form.urgent == true"
  - name: note
    label: Note
    type: string
  - name: it_contact
    label: Contact in IT
    type: string
    show_if: "requester.department == 'IT' and form.note != null"
  - name: gadget
    label: Gadget
    type: string
    show_if: "len([[[form.note] * 300] * 300] * 300) > 0"
"""
NESTED = "len([[[form.note] * 300] * 300] * 300) > 0"
URL = "/admin/items/purchase/preview"


@pytest.fixture
def client(tmp_path, template_db):
    catalog = tmp_path / "acme"
    shutil.copytree(ACME, catalog)
    (catalog / "items" / "purchase.yaml").write_text(PURCHASE)
    client = make_app(tmp_path / "app", template_db, catalog).test_client()
    Auth(client).login("oscar")
    return client


def why(response, field: str) -> tuple[str, str]:
    """The panel's status and reason for `field`, as text."""
    page = response.get_data(as_text=True)
    row = re.search(rf'<tr data-why="{field}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {field} in the why-panel"
    cells = re.findall(r'<td class="df-why-(?:status|reason)">(.*?)</td>', row.group(1), re.S)
    return tuple(html.unescape(re.sub(r"<[^>]+>", "", c)) for c in cells)  # type: ignore[return-value]



def test_defaults_say_why_each_field_is_shown_hidden_required_or_optional(client):
    page = client.get(URL)
    assert page.status_code == 200
    assert '<h2 class="h5" id="why-heading">Why is each field shown or required?</h2>' in text(page)
    assert "For the default answers" in text(page)
    assert why(page, "cost_center") == ("shown, required", "required: always (required: true)")
    assert why(page, "cost") == ("shown, optional", "shown: no condition")
    assert why(page, "justification") == (
        "shown, optional",
        "optional because required_if form.cost > 1000 does not hold (form.cost = no answer)")
    assert why(page, "manager_note") == (
        "hidden", "hidden because show_if form.urgent == true does not hold (form.urgent = false)")
    assert why(page, "it_contact") == (
        "hidden", "hidden because show_if requester.department == 'IT' and form.note != null "
        "does not hold (form.note = no answer, requester.department = 'IT')")


def test_trying_answers_explains_the_conditions_for_them(client):
    page = client.get(URL, query_string={"_try": "1", "cost_center": "CC-1", "cost": "1500",
                                         "urgent": "y", "note": "it's late"})
    assert page.status_code == 200
    assert "For the answers you tried" in text(page)
    assert 'name="cost" type="number" value="1500"' in text(page)
    assert why(page, "justification") == (
        "shown, required",
        "required because required_if form.cost > 1000 holds (form.cost = 1500)")
    assert why(page, "manager_note") == (
        "shown, optional", "shown because show_if form.urgent == true holds (form.urgent = true)")
    assert why(page, "it_contact") == (
        "shown, optional", "shown because show_if requester.department == 'IT' and "
        "form.note != null holds (form.note = \"it's late\", requester.department = 'IT')")
    assert why(page, "note") == ("shown, optional", "shown: no condition")
    assert "This field is required." in text(page)  # justification, now required, is empty


def test_a_malformed_answer_shows_its_error_and_conditions_read_it_as_no_valid_answer(client):
    page = client.get(URL, query_string={"_try": "1", "cost": "abc", "urgent": "maybe"})
    assert page.status_code == 200
    assert ('<div id="cost-error" class="invalid-feedback d-block" role="alert">'
            "Must be a whole number.</div>") in text(page)
    assert why(page, "justification") == (
        "shown, optional",
        "optional because required_if form.cost > 1000 does not hold (form.cost = no valid answer)")
    assert why(page, "manager_note") == (
        "hidden",
        "hidden because show_if form.urgent == true does not hold (form.urgent = no valid answer)")


@pytest.mark.parametrize("query", [
    {"_try": "1", "cost": "9" * 5000},
    {"_try": "1", "cost": ["1", "2"], "cost_center": "é" * 5000},
    {"_try": "", "urgent": ""},
])
def test_odd_query_strings_are_answers_like_any_other(client, query):
    page = client.get(URL, query_string=query)
    assert page.status_code == 200
    assert why(page, "cost_center") == ("shown, required", "required: always (required: true)")


def test_a_condition_that_cannot_be_evaluated_says_so(client):
    page = client.get(URL, query_string={"_try": "1", "note": "x"})
    assert page.status_code == 200
    assert why(page, "gadget") == (
        "undecided", f"undecided because show_if {NESTED} cannot be evaluated: "
        "expression exceeded its budget: a list of more than 10,000 items")
    assert (f"Cannot decide this field: {html.escape(NESTED)}: expression exceeded its budget: "
            "a list of more than 10,000 items.") in text(page)


def test_an_item_without_conditions(client):
    page = client.get("/admin/items/software-licence/preview")
    assert why(page, "software") == ("shown, required", "required: always (required: true)")
    assert why(page, "additional_users") == ("shown, optional", "shown: no condition")


def test_trying_answers_stores_and_orders_nothing(client):
    before = count_requests(client.application)
    page = client.get(URL, query_string={"_try": "1", "cost_center": "CC-1", "cost": "5"})
    assert why(page, "cost") == ("shown, optional", "shown: no condition")
    assert count_requests(client.application) == before


def test_only_admins_may_try_answers(client):
    Auth(client).logout()
    Auth(client).login("alice")
    assert client.get(URL, query_string={"_try": "1"}).status_code == 403


def text(response) -> str:
    return response.get_data(as_text=True)


def count_requests(app) -> int:
    with app.app_context():
        from web.extensions import db

        return db.session.scalar(select(func.count(Request.id))) or 0
