"""/reports served from a snapshot (engine.report_snapshots) through the Flask test client:
the page says when its figures were computed, a second view runs no figure query, a reporter
can recompute them (POST, CSRF), max age 0 is live, and a change shows after expiry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from catalog.errors import UsageError
from engine.models import ReportSnapshot
from tests.acme import ACME_ANSWERS
from tests.web.conftest import (  # noqa: F401 - fixtures
    app,
    auth,
    client,
    csrf_token,
    make_app,
    post,
    service,
    template_db,
)

T0 = datetime(2026, 11, 23, 3, 41, 20, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(service) -> Clock:  # noqa: F811 - the web service fixture
    service.clock = clock = Clock()
    return clock


def submit(service, who: str = "alice") -> None:  # noqa: F811
    service.submit("report-incident", who, dict(ACME_ANSWERS["report-incident"]))


def records(page: str) -> int:
    match = re.search(r"<td>records</td><td>(\d+)</td>", page)
    assert match, "no overview on the page"
    return int(match.group(1))


@contextmanager
def queries(app) -> Iterator[list[str]]:  # noqa: F811
    """The SQL statements the app runs inside the block (transaction statements left out)."""
    from web.extensions import db

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_second_view_reads_the_snapshot_and_says_when_it_was_computed(app, client, auth,  # noqa: F811
                                                                        service, clock):  # noqa: F811
    submit(service)
    auth.login("ivan")
    page = client.get("/reports").get_data(as_text=True)
    assert "Figures as of 03:41 UTC, refreshed every 5 minutes." in page
    assert records(page) == 1
    submit(service, "bob")
    clock.now = T0 + timedelta(seconds=299)
    with queries(app) as seen:
        page = client.get("/reports").get_data(as_text=True)
    assert records(page) == 1  # the snapshot, not the new record
    assert "Figures as of 03:41 UTC, refreshed every 5 minutes." in page
    assert any("FROM report_snapshots" in st for st in seen)
    figure_tables = ("record_facts", "approvals.decided_at", "article_views", "csat_responses")
    assert not [st for st in seen if any(t in st for t in figure_tables)]  # no figure query
    # expired: recomputed, the new record shows
    clock.now = T0 + timedelta(seconds=300)
    page = client.get("/reports").get_data(as_text=True)
    assert records(page) == 2
    assert "Figures as of 03:46 UTC, refreshed every 5 minutes." in page


def test_a_reporter_recomputes_the_figures_of_their_filters(client, auth, service, clock):  # noqa: F811
    submit(service)
    auth.login("ivan")
    page = client.get("/reports?kind=incident").get_data(as_text=True)
    assert records(page) == 1
    assert '<input type="hidden" name="kind" value="incident">' in page
    submit(service, "bob")
    clock.now = T0 + timedelta(minutes=2)
    response = client.post("/reports/refresh", data={"csrf_token": csrf_token(page),
                                                     "kind": "incident"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/reports?kind=incident"
    page = client.get("/reports?kind=incident").get_data(as_text=True)
    assert records(page) == 2
    assert "Figures as of 03:43 UTC, refreshed every 5 minutes." in page


def test_a_recompute_needs_the_csrf_token_and_checks_the_filters(client, auth, post, clock):  # noqa: F811
    auth.login("ivan")
    response = client.post("/reports/refresh", data={})
    assert response.status_code == 400
    assert "The form expired or did not come from this site." in response.get_data(as_text=True)
    response = post("/reports/refresh", {"kind": "ticket"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "These report filters are wrong" in page and "Unknown kind &#39;ticket&#39;" in page
    auth.logout()
    auth.login("alice")
    assert post("/reports/refresh").status_code == 403


def test_max_age_zero_is_live_and_leaves_the_table_alone(tmp_path, template_db, clock):  # noqa: F811
    live = make_app(tmp_path / "live", template_db)
    live.config["DESKFLOW_REPORTS_MAX_AGE"] = 0
    live.extensions["deskflow"].service.clock = clock
    submit(live.extensions["deskflow"].service)
    browser = live.test_client()
    page = browser.get("/login").get_data(as_text=True)
    browser.post("/login", data={"username": "ivan", "password": "correct horse battery staple",
                                 "csrf_token": csrf_token(page)})
    with queries(live) as seen:
        page = browser.get("/reports").get_data(as_text=True)
    assert "Figures computed live at 03:41 UTC." in page and "Recompute now" not in page
    assert records(page) == 1
    assert not any("report_snapshots" in st for st in seen)
    with live.app_context():
        from web.extensions import db

        assert db.session.scalar(select(func.count()).select_from(ReportSnapshot)) == 0


@pytest.mark.parametrize(("value", "words"), [(60, "1 minute"), (90, "90 seconds"),
                                              (7200, "2 hours"), (600, "10 minutes")])
def test_the_page_names_the_max_age(app, client, auth, clock, value, words):  # noqa: F811
    app.config["DESKFLOW_REPORTS_MAX_AGE"] = value
    auth.login("ivan")
    assert f"Figures as of 03:41 UTC, refreshed every {words}." in client.get("/reports").get_data(
        as_text=True)


def test_a_bad_max_age_stops_the_app(tmp_path, template_db, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DESKFLOW_REPORTS_MAX_AGE", "soon")
    with pytest.raises(UsageError) as err:
        make_app(tmp_path, template_db)
    assert str(err.value) == ("DESKFLOW_REPORTS_MAX_AGE must be a whole number of seconds, "
                              "0 or more (not soon)")
