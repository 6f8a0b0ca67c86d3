"""The catalog portal: home and search, item pages and their order forms, confirmation, articles."""

from __future__ import annotations

import html
import logging
import re
import shutil
import time
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from catalog.loader import load_catalog
from engine.models import Request
from tests.web.conftest import ACME, Auth, csrf_token
from web import create_app
from web.portal import markdown
from web.search import SearchIndex, search_index

LAPTOP = {"model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": "3",
          "keyboard_layout": "us-intl"}


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes, and the text of each label by its `for`."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self._label: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "label":
            self._label = dict(attrs).get("for")
            if self._label:
                self.labels[self._label] = ""

    def handle_endtag(self, tag):
        if tag == "label":
            self._label = None

    def handle_data(self, data):
        if self._label:
            self.labels[self._label] += data

    def inputs(self) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t in ("input", "select", "textarea")
                and a.get("type") not in ("hidden", "search", "submit")]

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}


def text(response) -> str:
    return response.get_data(as_text=True)


def count_requests(app) -> int:
    with app.app_context():
        from web.extensions import db

        return db.session.scalar(select(func.count(Request.id))) or 0


def stored(app, number: str) -> Request:
    with app.app_context():
        from web.extensions import db

        req = db.session.scalar(select(Request).where(Request.number == number))
        assert req is not None
        db.session.expunge(req)
        return req


def order(post, item: str, data: dict):
    return post(f"/items/{item}", data, page=f"/items/{item}")


# ---------------------------------------------------------------- home and search


def test_home_lists_the_categories_of_what_the_person_may_order(client, auth):
    auth.login("alice")
    page = text(client.get("/"))
    headings = re.findall(r'<h2 class="h5" id="cat-\d+">([^<]+)</h2>', page)
    assert headings == ["Access", "Facilities", "Hardware", "People", "Software", "Support"]
    assert '<a class="stretched-link" href="/items/new-laptop">New laptop</a>' in page
    assert "A standard or Pro laptop, imaged with the Acme build" in page
    assert 'data-icon="laptop"' in page


def test_it_staff_also_see_changes(client, auth):
    auth.login("frank")
    page = text(client.get("/"))
    assert ">Changes</h2>" in page
    assert 'href="/items/normal-change">Normal change</a>' in page


def test_search_finds_by_keyword(client, auth):
    auth.login("alice")
    page = text(client.get("/?q=Notebook"))
    assert "1 result for “Notebook”" in page
    assert 'href="/items/new-laptop">New laptop</a>' in page


def result_names(page: str) -> list[str]:
    return re.findall(r'class="stretched-link" href="/items/[a-z0-9-]+">([^<]+)</a>', page)


def test_search_ranks_name_before_keywords_and_summary(client, auth):
    auth.login("alice")
    assert result_names(text(client.get("/?q=laptop"))) == [
        "New laptop", "New hire onboarding", "VPN access"]
    assert result_names(text(client.get("/?q=access")))[-1] == "Shared mailbox"


def test_search_needs_every_word(client, auth):
    auth.login("alice")
    assert result_names(text(client.get("/?q=laptop+notebook"))) == ["New laptop"]
    page = text(client.get("/?q=laptop+submarine"))
    assert "0 results for “laptop submarine”" in page
    assert "Nothing matches every word." in page


def test_search_matches_the_category(client, auth):
    auth.login("alice")
    assert result_names(text(client.get("/?q=HARDWARE"))) == [
        "Mobile phone", "Monitor and peripherals", "New laptop"]


def test_search_does_not_show_what_the_person_may_not_order(client, auth):
    auth.login("alice")
    assert result_names(text(client.get("/?q=change"))) == []
    auth.logout()
    auth.login("frank")
    assert result_names(text(client.get("/?q=change"))) == ["Emergency change", "Normal change",
                                                             "Standard change"]


def test_a_long_query_is_cut_short_not_refused(client, auth):
    auth.login("alice")
    response = client.get("/?q=" + "laptop " * 5000)
    assert response.status_code == 200
    assert "New laptop" in text(response)


def test_the_search_index_is_built_once_per_catalog_version(app):
    with app.app_context():
        from web.context import catalog

        assert search_index(catalog()) is search_index(catalog())


def test_the_index_ranks_a_thousand_items(tmp_path):
    cat = load_catalog(ACME)
    base = cat.item("new-laptop")
    items = [base.__class__(**{**{s: getattr(base, s) for s in base.__slots__},
                               "id": f"item-{n}", "name": f"Thing {n}",
                               "keywords": ("gadget",) if n % 2 else ()})
             for n in range(1000)]
    index = SearchIndex.build(items)
    found = index.search("gadget thing", lambda item: True)
    assert len(found) == 500
    assert index.search("thing 999", lambda item: True)[0].name == "Thing 999"


# ---------------------------------------------------------------- visibility


def test_an_item_the_person_may_not_order_is_not_found(client, auth):
    auth.login("alice")
    assert client.get("/items/normal-change").status_code == 404
    assert client.get("/items/no-such-item").status_code == 404
    auth.logout()
    auth.login("frank")
    assert client.get("/items/normal-change").status_code == 200


def test_ordering_what_one_may_not_see_is_not_found(client, auth, post, app):
    auth.login("alice")
    response = post("/items/normal-change", {"change_title": "Upgrade everything"})
    assert response.status_code == 404
    assert count_requests(app) == 0


# ---------------------------------------------------------------- the order form


def test_the_laptop_form_labels_every_field(client, auth):
    auth.login("alice")
    page = text(client.get("/items/new-laptop"))
    tags = Tags(page)
    names = [a["name"] for a in tags.inputs()]
    assert names == ["requested_for", "model", "justification", "replaces_asset",
                     "keyboard_layout", "needed_by", "cost_center", "department", "building",
                     "floor", "desk", "home_address"]
    for attrs in tags.inputs():
        assert attrs["id"] in tags.labels, f"{attrs['id']} has no label"
        for ref in (attrs.get("aria-describedby") or "").split():
            assert ref in tags.ids(), f"{attrs['id']} points at a missing {ref}"
    assert tags.labels["model"] == "Model"
    assert tags.labels["justification"] == "Why do you need the Pro model?"
    assert "None" not in re.findall(r'aria-[a-z]+="([^"]*)"', page)


def test_the_laptop_form_shows_help_required_marks_and_conditions(client, auth):
    auth.login("alice")
    page = text(client.get("/items/new-laptop"))
    assert ('<div id="cost_center-help" class="form-text">Your department&#39;s cost center, '
            "as shown in the ERP. Ask your manager if you are unsure.</div>") in page
    assert ('<label class="form-label" for="cost_center">Cost center</label>'
            '<span class="text-danger" aria-hidden="true"> *</span>') in page
    # the Pro justification starts hidden (the default model is std14); so does the home address
    assert '<div class="mb-3 df-field" data-field-wrap="justification" hidden>' in page
    assert '<div class="mb-3 df-field" data-field-wrap="home_address" hidden>' in page
    assert '<div class="mb-3 df-field" data-field-wrap="floor">' in page
    rules = re.search(r'<script type="application/json" id="df-rules">(.*?)</script>', page, re.S)
    assert rules and '"show_if": {"left": {"field": "model"}, "op": "==", "right": {"const": "pro16"}}' \
        in rules.group(1)
    assert 'value="Sales"' in page  # the department defaults to the requester's
    assert '<a href="/kb/laptop-policy?from=new-laptop">Laptop and device policy</a>' in page


@pytest.mark.parametrize("item_id", [i.id for i in load_catalog(ACME).items])
def test_every_item_form_renders_with_labels(client, auth, item_id):
    auth.login("oscar")  # an admin may order everything
    response = client.get(f"/items/{item_id}")
    assert response.status_code == 200
    tags = Tags(text(response))
    for attrs in tags.inputs():
        assert attrs["id"] in tags.labels, f"{item_id}: {attrs['id']} has no label"
    assert 'style="' not in text(response)
    assert "<script>" not in text(response)


def test_a_table_field_renders_rows_with_an_add_button(client, auth):
    auth.login("alice")
    page = text(client.get("/items/monitor-peripherals"))
    assert '<label class="visually-hidden" for="accessories-0-accessory" data-row-label="Accessory">' \
           "Accessory, row 1</label>" in page
    assert 'data-add-row="accessories-rows">Add row</button>' in page
    assert 'data-max-items="6"' in page


def test_a_table_is_stored_as_rows(client, auth, post, app):
    auth.login("alice")
    response = order(post, "monitor-peripherals", {
        "accessories-0-accessory": "dock", "accessories-0-quantity": "1",
        "accessories-3-accessory": "mouse", "accessories-3-quantity": "2",
        "building": "ams-hq", "floor": "2"})
    assert response.status_code == 302
    number = response.headers["Location"].split("/")[2]
    assert stored(app, number).answers["accessories"] == [
        {"accessory": "dock", "quantity": 1}, {"accessory": "mouse", "quantity": 2}]


def test_a_bad_table_row_is_an_inline_error(client, auth, post, app):
    auth.login("alice")
    response = order(post, "monitor-peripherals", {
        "accessories-0-accessory": "dock", "accessories-0-quantity": "9",
        "building": "ams-hq", "floor": "2"})
    assert response.status_code == 422
    assert re.search(r'<div id="accessories-error" class="invalid-feedback d-block" role="alert">'
                     r"Row 1: Quantity must be at most 4.</div>", text(response))
    assert count_requests(app) == 0


def test_table_rows_beyond_max_items_are_not_read(client, auth, post, app):
    auth.login("alice")
    rows = {}
    for i in range(400):  # rows past the seventh would each be an error, were they read
        rows[f"accessories-{i}-accessory"] = "dock"
        rows[f"accessories-{i}-quantity"] = "1" if i < 7 else "9"
    response = order(post, "monitor-peripherals", {**rows, "building": "ams-hq", "floor": "2"})
    assert response.status_code == 422
    assert ('<div id="accessories-error" class="invalid-feedback d-block" role="alert">'
            "Must have at most 6 rows.</div>") in text(response)
    assert count_requests(app) == 0


# ---------------------------------------------------------------- submitting


def test_an_invalid_form_shows_inline_errors_and_creates_nothing(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "cost_center": "", "replaces_asset": "old one"})
    page = text(response)
    assert response.status_code == 422
    assert '<div id="cost_center-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in page
    assert re.search(r'<input aria-describedby="cost_center-help cost_center-error" '
                     r'aria-invalid="true" class="form-control is-invalid"', page)
    assert '<div id="replaces_asset-error" class="invalid-feedback d-block" role="alert">' in page
    assert 'value="old one"' in page  # nothing typed is lost
    assert '<a class="alert-link" href="#cost_center">Cost center</a>: This field is required.' in page
    assert count_requests(app) == 0


def test_the_pro_model_needs_a_justification(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "model": "pro16"})
    page = text(response)
    assert response.status_code == 422
    assert '<div id="justification-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in page
    assert '<div class="mb-3 df-field" data-field-wrap="justification">' in page  # now shown
    assert count_requests(app) == 0
    response = order(post, "new-laptop", {**LAPTOP, "model": "pro16",
                                          "justification": "I train models on large datasets."})
    assert response.status_code == 302
    number = response.headers["Location"].split("/")[2]
    assert stored(app, number).answers["justification"] == "I train models on large datasets."


def test_a_justification_for_the_standard_model_is_ignored(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "justification": "x"})
    assert response.status_code == 302
    number = response.headers["Location"].split("/")[2]
    assert stored(app, number).answers["justification"] is None


def test_submitting_leads_to_the_confirmation(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", LAPTOP)
    assert response.status_code == 302
    assert re.fullmatch(r"/requests/REQ-\d{6}/submitted", response.headers["Location"])
    number = response.headers["Location"].split("/")[2]
    req = stored(app, number)
    assert (req.requester_id, req.requested_for_id, req.item_id) == ("alice", "alice", "new-laptop")
    assert req.answers["model"] == "std14" and req.answers["floor"] == 3
    page = text(client.get(response.headers["Location"]))
    assert f'Your request number is <strong class="df-number">{number}</strong>.' in page
    assert '<dd class="col-sm-8 df-next">Waiting for your manager</dd>' in page
    assert f'href="/requests/{number}">View the request</a>' in page


def test_a_request_done_at_once_says_so(client, auth, post):
    auth.login("alice")
    response = order(post, "password-unlock", {"account": "acme"})
    page = text(client.get(response.headers["Location"]))
    assert "<dt class=\"col-sm-4\">Outcome</dt>" in page


def test_ordering_for_someone_else(client, auth, post, app):
    auth.login("alice")
    page = text(client.get("/items/new-laptop"))
    assert '<option value="alice" selected>Alice Jansen (myself)</option>' in page
    assert '<option value="bob">Bob Bakker</option>' in page
    response = order(post, "new-laptop", {**LAPTOP, "requested_for": "bob"})
    assert response.status_code == 302
    req = stored(app, response.headers["Location"].split("/")[2])
    assert (req.requester_id, req.requested_for_id) == ("alice", "bob")
    assert "<dt class=\"col-sm-4\">For</dt><dd class=\"col-sm-8\">Bob Bakker</dd>" in text(
        client.get(response.headers["Location"]))


def test_ordering_for_someone_unknown_is_an_inline_error(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "requested_for": "nobody"})
    assert response.status_code == 422
    assert '<div id="requested_for-error" class="invalid-feedback d-block" role="alert">' \
           "nobody is not an active person.</div>" in text(response)
    assert count_requests(app) == 0


def test_some_items_are_only_for_yourself(client, auth, post, app):
    auth.login("alice")
    assert 'name="requested_for"' not in text(client.get("/items/password-unlock"))
    response = order(post, "password-unlock", {"account": "acme", "requested_for": "bob"})
    assert response.status_code == 422
    assert "This item is ordered for yourself only." in text(response)
    assert count_requests(app) == 0


def test_the_confirmation_of_someone_elses_request_is_not_found(client, auth, post):
    auth.login("alice")
    location = order(post, "new-laptop", LAPTOP).headers["Location"]
    auth.logout()
    auth.login("grace")
    assert client.get(location).status_code == 404
    assert client.get("/requests/REQ-999999/submitted").status_code == 404


# ---------------------------------------------------------------- malformed posts


def test_an_order_without_its_csrf_token_is_refused(client, auth, app):
    auth.login("alice")
    response = client.post("/items/new-laptop", data=LAPTOP)
    assert response.status_code == 400
    assert count_requests(app) == 0


def test_huge_values_are_refused(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "department": "x" * 5000})
    assert response.status_code == 422
    assert "Must be at most 120 characters." in text(response)
    response = order(post, "new-laptop", {**LAPTOP, "department": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert count_requests(app) == 0


def test_unknown_fields_are_ignored(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "is_admin": "yes", "state": "fulfilled"})
    assert response.status_code == 302
    req = stored(app, response.headers["Location"].split("/")[2])
    assert "is_admin" not in req.answers and req.state == "manager_approval"


def test_wrong_types_are_inline_errors(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-laptop", {**LAPTOP, "floor": "third", "needed_by": "tomorrow",
                                          "model": "pro99"})
    page = text(response)
    assert response.status_code == 422
    assert '<div id="floor-error" class="invalid-feedback d-block" role="alert">' \
           "Must be a whole number.</div>" in page
    assert '<div id="needed_by-error" class="invalid-feedback d-block" role="alert">' \
           "Must be a date (YYYY-MM-DD).</div>" in page
    assert '<div id="model-error" class="invalid-feedback d-block" role="alert">' \
           "pro99 is not one of the choices.</div>" in page
    assert count_requests(app) == 0


# ---------------------------------------------------------------- knowledge


def test_an_article_is_rendered_from_markdown(client, auth):
    auth.login("alice")
    page = text(client.get("/kb/laptop-policy"))
    assert '<h1 class="h3" id="article-title">Laptop and device policy</h1>' in page
    assert "<h2>Laptop and device policy</h2>" in page  # the article's own headings move down
    assert "<strong>one company laptop</strong>" in page
    assert "<table>" in page
    assert '<a href="/items/new-laptop">New laptop</a>' in page


def test_articles_follow_their_visibility(client, auth):
    auth.login("alice")
    assert client.get("/kb/change-management-guide").status_code == 404
    assert client.get("/kb/no-such-article").status_code == 404
    auth.logout()
    auth.login("frank")
    assert client.get("/kb/change-management-guide").status_code == 200


def test_markdown_escapes_html_and_script_links():
    html = str(markdown("Hi <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
                        "[click](javascript:alert(3)) [ok](https://acme.example/)"))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://acme.example/">ok</a>' in html


@pytest.fixture
def evil_app(tmp_path, template_db):
    catalog = tmp_path / "catalog"
    shutil.copytree(ACME, catalog)
    (catalog / "kb" / "evil.md").write_text(
        "---\nid: evil\ntitle: <b>Bold</b> title\nsummary: <i>sum</i>\n---\n"
        "# Hello\n\n<script>alert('x')</script>\n\n[x](javascript:alert(1))\n", "utf-8")
    db_file = tmp_path / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    return create_app({"TESTING": True, "SECRET_KEY": "test", "RATELIMIT_ENABLED": False,
                       "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
                       "DESKFLOW_CATALOG": str(catalog), "DESKFLOW_SECURE_COOKIES": False})


def test_an_article_page_escapes_html(evil_app):
    from tests.web.conftest import Auth

    client = evil_app.test_client()
    Auth(client).login("alice")
    response = client.get("/kb/evil")
    page = text(response)
    assert response.status_code == 200
    assert '<h1 class="h3" id="article-title">&lt;b&gt;Bold&lt;/b&gt; title</h1>' in page
    assert "<p>&lt;script&gt;alert('x')&lt;/script&gt;</p>" in page
    assert "<script>alert" not in page and 'href="javascript:' not in page


# ---------------------------------------------------------------- expression budget

NESTED = "len([[[form.model] * 300] * 300] * 300) > 0"


@pytest.fixture
def over_budget(tmp_path, template_db):
    """Acme, where a show_if builds 27 million list items from an answer (it passes validate)."""
    catalog = tmp_path / "acme"
    shutil.copytree(ACME, catalog)
    laptop = catalog / "items" / "new-laptop.yaml"
    laptop.write_text(laptop.read_text().replace("show_if: \"form.model == 'pro16'\"",
                                                 f"show_if: \"{NESTED}\""))
    db_file = tmp_path / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
        "DESKFLOW_CATALOG": str(catalog), "DESKFLOW_SECURE_COOKIES": False,
        "RATELIMIT_ENABLED": False, "DESKFLOW_PASSWORD_HASHING": "fast"})
    client = app.test_client()
    Auth(client).login("alice")
    return app, client


def test_a_condition_over_its_budget_is_a_clear_error_not_a_slow_page(over_budget, caplog):
    app, client = over_budget
    started = time.process_time()
    page = client.get("/items/new-laptop")
    assert page.status_code == 200
    response = client.post("/items/new-laptop", data={"csrf_token": csrf_token(text(page)), **LAPTOP})
    assert time.process_time() - started < 1
    assert response.status_code == 422
    assert ('<a class="alert-link" href="#justification">Why do you need the Pro model?</a>: '
            f"Cannot decide this field: {html.escape(NESTED)}: expression exceeded its budget: "
            "a list of more than 10,000 items.</li>") in text(response)
    assert count_requests(app) == 0
    assert ("deskflow.forms", logging.WARNING, "a condition cannot be evaluated, so it does not "
            f"hold: {NESTED}: expression exceeded its budget: a list of more than 10,000 items"
            ) in caplog.record_tuples


# ---------------------------------------------------------------- checks across fields

NEW_HIRE = {"new_hire_name": "Sam Smith", "personal_email": "sam@example.com",
            "job_title": "Analyst", "start_date": "2027-01-04", "hiring_manager": "bob",
            "contract_type": "fixed-term", "contract_end": "2026-12-31", "office": "ams-hq",
            "equipment": "laptop"}


def test_a_check_across_fields_shows_its_message_next_to_its_field(client, auth, post, app):
    auth.login("alice")
    response = order(post, "new-hire-onboarding", NEW_HIRE)
    page = text(response)
    assert response.status_code == 422
    assert ('<div id="contract_end-error" class="invalid-feedback d-block" role="alert">'
            "The contract cannot end before the start date.</div>") in page
    assert ('<a class="alert-link" href="#contract_end">Contract end date</a>: '
            "The contract cannot end before the start date.") in page
    assert count_requests(app) == 0
    assert order(post, "new-hire-onboarding", {**NEW_HIRE, "contract_end": "2027-06-30"}
                 ).status_code == 302


def test_a_check_without_a_field_shows_its_message_at_the_top_of_the_form(tmp_path, template_db):
    from tests.web.conftest import Auth, csrf_token

    catalog = tmp_path / "acme"
    shutil.copytree(ACME, catalog)
    with (catalog / "items" / "new-laptop.yaml").open("a") as f:
        f.write("checks:\n  - {when: \"form.floor == 12\", message: Floor 12 is closed for works.}\n")
    shutil.copy(template_db, tmp_path / "deskflow.sqlite")
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "DESKFLOW_CATALOG": str(catalog),
        "DESKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'deskflow.sqlite'}",
        "DESKFLOW_SECURE_COOKIES": False, "RATELIMIT_ENABLED": False,
        "DESKFLOW_PASSWORD_HASHING": "fast",
    })
    app.instance_path = str(tmp_path / "instance")
    client = app.test_client()
    Auth(client).login("alice")
    token = csrf_token(text(client.get("/items/new-laptop")))
    response = client.post("/items/new-laptop",
                           data={"csrf_token": token, **LAPTOP, "floor": "12"})
    page = text(response)
    assert response.status_code == 422
    summary = page[page.index('id="df-error-summary"'):page.index('<form method="post"')]
    assert "<li>Floor 12 is closed for works.</li>" in summary
    assert "invalid-feedback" not in page
