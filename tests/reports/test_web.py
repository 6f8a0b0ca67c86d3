"""/reports through the Flask test client: who sees it, the charts and tables, CSV exports,
and bad filters (422 naming the filter, never a 500)."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.acme import ACME_ANSWERS
from tests.web.conftest import app, auth, client, service, template_db  # noqa: F401 - fixtures


@pytest.fixture
def two(service):  # noqa: F811 - the web service fixture
    return [service.submit("report-incident", who, dict(ACME_ANSWERS["report-incident"]))
            for who in ("alice", "bob")]


@pytest.mark.parametrize(("who", "status"), [
    ("alice", 403),   # an employee
    ("frank", 403),   # an agent, no owner of a group owning an item
    ("ivan", 200),    # the reporting role
    ("victor", 200),  # manages facilities, which owns items: a service owner
    ("oscar", 200),   # an admin
])
def test_reports_are_for_reporting_service_owners_and_admins(client, auth, who, status):  # noqa: F811
    auth.login(who)
    assert client.get("/reports").status_code == status
    assert client.get("/reports/volume.csv").status_code == status
    assert client.get("/reports/records.csv").status_code == status


def test_the_page_draws_each_figure_as_svg_beside_its_table(client, auth, two):  # noqa: F811
    auth.login("ivan")
    page = client.get("/reports?kind=incident").get_data(as_text=True)
    assert page.count("<svg") >= 5
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script
    assert "Volume per week" in page and "Backlog by group" in page
    assert 'href="/reports/volume.csv?kind=incident"' in page
    # volume: opened and resolved as two series of columns, with a legend
    volume = re.search(r"<svg[^>]*><title>Volume per week</title>.*?</svg>", page).group(0)
    assert ">opened</text>" in volume and ">resolved</text>" in volume
    year, number, _ = two[0].created_at.isocalendar()
    week = f"{year}-W{number:02d}"
    assert f"<title>{week} opened: 2</title>" in volume
    assert f"<title>{week} resolved: 0</title>" in volume


def test_a_figure_exports_as_csv_with_the_filters(client, auth, two):  # noqa: F811
    auth.login("oscar")
    body = client.get("/reports/backlog_by_group.csv?kind=incident").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(body))) == [["group", "open"], ["service-desk", "2"]]
    body = client.get("/reports/backlog_by_group.csv?kind=change").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(body))) == [["group", "open"]]


def test_records_csv_has_every_matching_record(client, auth, two):  # noqa: F811
    auth.login("oscar")
    response = client.get("/reports/records.csv?group=service-desk")
    assert response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0][:3] == ["number", "record_type", "item_id"]
    assert [r[0] for r in table[1:]] == [r.number for r in two]


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-02-30", "from: &#39;2026-02-30&#39; is not a date (YYYY-MM-DD)."),
    ("group=ghosts", "group: Unknown group &#39;ghosts&#39;."),
    ("priority=p9", "priority: Unknown priority &#39;p9&#39;."),
    ("kind=ticket", "Unknown kind &#39;ticket&#39;"),
])
def test_a_bad_filter_is_a_422_naming_it(client, auth, query, message):  # noqa: F811
    auth.login("oscar")
    for url in (f"/reports?{query}", f"/reports/volume.csv?{query}", f"/reports/records.csv?{query}"):
        response = client.get(url)
        assert response.status_code == 422, url
        assert "These report filters are wrong" in response.get_data(as_text=True)


def test_an_unknown_figure_is_a_404(client, auth):  # noqa: F811
    auth.login("oscar")
    response = client.get("/reports/nonsense.csv")
    assert response.status_code == 404
    assert "There is no report named &#39;nonsense&#39;." in response.get_data(as_text=True)


def test_the_nav_links_to_reports_only_for_those_who_see_them(client, auth):  # noqa: F811
    auth.login("ivan")
    assert 'href="/reports">Reports</a>' in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login("alice")
    assert 'href="/reports"' not in client.get("/").get_data(as_text=True)
