"""Report snapshots (engine.report_snapshots) on SQLite and PostgreSQL: served within the max
age without a figure query, recomputed when expired or asked, kept fresh by the worker,
never touched at max age 0; and the approval medians aggregated in the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median

import pytest
from sqlalchemy import event, func, select

from engine import report_snapshots, reports
from engine.delivery_config import DeliveryConfig
from engine.models import Approval, ReportSnapshot
from engine.report_snapshots import current_figures, refresh_unfiltered
from engine.reports import Filters
from engine.worker import reports_refresher, run_worker

ALL = Filters()


@contextmanager
def statements(engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def records(shown: report_snapshots.Figures) -> int:
    overview = next(fig for fig in shown.figures if fig.name == "overview")
    return overview.rows[0][1]


@pytest.fixture
def one(service, answers):
    return service.submit("report-incident", "alice", answers["report-incident"])


def view(sessions, clock, max_age=300, f=ALL, **kw) -> report_snapshots.Figures:
    with sessions.begin() as s:
        return current_figures(s, f, clock.now, max_age, **kw)


def test_a_second_view_within_the_max_age_reads_the_snapshot(one, sessions, engine, clock):
    first = view(sessions, clock)
    assert not first.live and first.computed_at == clock.now
    clock.advance(seconds=299)
    with statements(engine) as seen:
        second = view(sessions, clock)
    queries = [st for st in seen if not st.startswith("BEGIN")]  # (SQLite's BEGIN IMMEDIATE)
    assert len(queries) == 1 and "FROM report_snapshots" in queries[0]  # no figure query
    assert second.computed_at == first.computed_at
    # every field of every figure comes back as computed
    assert second.figures == first.figures
    with sessions() as s:
        assert [fig.name for fig in second.figures] == list(reports.FIGURES)
        assert list(second.figures) == reports.all_figures(s, ALL, first.computed_at)


def test_an_expired_snapshot_is_recomputed_and_shows_new_data(one, service, answers, sessions,
                                                              clock):
    assert records(view(sessions, clock)) == 1
    service.submit("report-incident", "bob", answers["report-incident"])
    clock.advance(seconds=299)
    assert records(view(sessions, clock)) == 1  # still the snapshot
    clock.advance(seconds=1)
    shown = view(sessions, clock)
    assert records(shown) == 2 and shown.computed_at == clock.now
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReportSnapshot)) == 1  # replaced


def test_a_forced_recompute_ignores_a_young_snapshot(one, service, answers, sessions, clock):
    view(sessions, clock)
    service.submit("report-incident", "bob", answers["report-incident"])
    clock.advance(seconds=10)
    assert records(view(sessions, clock, fresh=True)) == 2
    assert view(sessions, clock).computed_at == clock.now


def test_each_set_of_filters_has_its_own_snapshot(one, sessions, clock):
    assert records(view(sessions, clock, f=Filters(kind="change"))) == 0
    assert records(view(sessions, clock)) == 1
    with sessions() as s:
        assert sorted(s.scalars(select(ReportSnapshot.key))) == ['{"kind":"change"}', "{}"]


def test_max_age_zero_is_live_and_never_touches_the_table(one, sessions, engine, clock):
    with statements(engine) as seen:
        shown = view(sessions, clock, max_age=0)
    assert shown.live and records(shown) == 1
    assert not any("report_snapshots" in st for st in seen)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReportSnapshot)) == 0


def test_the_worker_refreshes_the_unfiltered_snapshot_at_half_the_max_age(one, service, answers,
                                                                          sessions, clock):
    def work() -> None:
        run_worker(sessions, DeliveryConfig(), clock, run_timers=None, stop=threading.Event(),
                   once=True, refresh_reports=reports_refresher(sessions, 300))

    work()  # none yet: computed
    assert view(sessions, clock).computed_at == clock.now
    service.submit("report-incident", "bob", answers["report-incident"])
    first = clock.now
    clock.advance(seconds=149)
    work()  # younger than half the max age: kept
    assert view(sessions, clock).computed_at == first
    clock.advance(seconds=1)
    work()
    shown = view(sessions, clock)
    assert shown.computed_at == clock.now and records(shown) == 2
    assert reports_refresher(sessions, 0) is None
    with sessions.begin() as s:
        assert refresh_unfiltered(s, clock.now, 0) is False


def test_the_max_age_setting_is_whole_seconds():
    assert report_snapshots.max_age({}) == 300
    assert report_snapshots.max_age({"DESKFLOW_REPORTS_MAX_AGE": "0"}) == 0
    from catalog.errors import UsageError

    for bad in ("-1", "soon", True, -5):
        with pytest.raises(UsageError) as err:
            report_snapshots.max_age({"DESKFLOW_REPORTS_MAX_AGE": bad})
        assert str(err.value) == ("DESKFLOW_REPORTS_MAX_AGE must be a whole number of seconds, "
                                  f"0 or more (not {bad})")


def test_approval_medians_interpolate_between_ranks_in_the_database(service, answers, sessions,
                                                                    clock):
    """Approvals decided after 1, 2, 4, 7 and 10 hours and a few seconds: the median of the
    first four interpolates (even count), of all five it is the middle one (odd count), as
    statistics.median over the exact hours computes them."""
    hours: list[float] = []
    for after in (1, 2, 4, 7, 10):
        req = service.submit("new-laptop", "alice", answers["new-laptop"])
        with sessions() as s:
            approval = s.scalars(select(Approval).where(Approval.request_id == req.id)).one()
            approval_id, approver = approval.id, approval.approver_id
        clock.advance(hours=after, seconds=after * 7.123457)
        service.approve(approval_id, approver, "")
        with sessions() as s:
            a = s.get(Approval, approval_id)
            hours.append((a.decided_at - a.created_at).total_seconds() / 3600)
        expected = round(median(hours), 2)
        with sessions() as s:
            assert reports.figure(s, "approvals_by_item", ALL, clock.now).rows == [
                ["new-laptop", len(hours), expected]]
            assert reports.figure(s, "approvals_by_approver", ALL, clock.now).rows == [
                [approver, len(hours), expected]]
            assert reports.figure(s, "approvals_by_item", Filters(kind="change"),
                                  clock.now).rows == []
    assert [round(median(hours[:k]), 1) for k in (4, 5)] == [3.0, 4.0]
