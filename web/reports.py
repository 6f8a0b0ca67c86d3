"""The dashboards at /reports (engine.reports, docs/reports.md): charts, tables, CSV exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import login_required
from markupsafe import Markup
from werkzeug.wrappers import Response as WerkzeugResponse

from engine import permissions, report_snapshots, reports
from engine.errors import NotAllowed, NotFound
from engine.reports import Filters
from web.charts import bars, columns
from web.context import catalog, nav, now, owner_groups, service, session, viewer

bp = Blueprint("reports", __name__)


@bp.app_template_global("can_see_reports")
def can_see_reports() -> bool:
    """Whether the viewer sees /reports (the nav link; a template global)."""
    return permissions.can_see_reports(session(), viewer(), owner_groups(catalog()),
                                       owns_service=nav().owns_service)


def _allowed() -> None:
    if not can_see_reports():
        raise NotAllowed("Only people with the reporting role, service owners and admins see "
                         "the reports.")


def _filters(raw: Any = None) -> Filters:
    cat = catalog()
    return reports.parse_filters(session(), request.args if raw is None else raw,
                                 priorities=tuple(p.id for p in cat.settings.priorities),
                                 items=tuple(i.id for i in cat.items))


def _csv(header: Iterable[str], rows: Iterable[Iterable[Any]], name: str) -> Response:
    """A CSV download, streamed in chunks of about 16 KB. The first chunk is made here, in the
    view: the query runs where a database error still becomes an error page (a 503 when the
    database cannot be reached). Once streaming has begun, the status is sent and a failure
    can only cut the download short. A small export is made whole here."""
    def lines() -> Iterator[str]:
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(header)
        for row in rows:
            out.writerow(["" if v is None else v for v in row])
            if buf.tell() > 16384:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    chunks = lines()
    first = next(chunks)
    return Response(stream_with_context(chain((first,), chunks)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _chart(fig: reports.Figure) -> Markup | None:
    if fig.chart == "columns":
        return columns(fig.title, fig.columns[1:], fig.rows)
    if fig.chart == "bars":
        return bars(fig.title, [(r[fig.chart_columns[0]], r[fig.chart_columns[1]]) for r in fig.rows])
    return None


def _every(seconds: int) -> str:
    """How often the figures are recomputed, in words: "5 minutes", "1 hour", "90 seconds"."""
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    raise AssertionError("unreachable: every whole number is a number of seconds")


def _show(f: Filters) -> str:
    max_age = report_snapshots.max_age(current_app.config)
    # a snapshot computed now is stored in a write transaction of its own, for every process
    shown = report_snapshots.current_figures(session(), f, now(), max_age,
                                             writer=service().sessions)
    at = shown.computed_at.strftime("%H:%M UTC")
    as_of = (f"Figures computed live at {at}." if shown.live
             else f"Figures as of {at}, refreshed every {_every(max_age)}.")
    charts = {fig.name: _chart(fig) for fig in shown.figures}
    cat = catalog()
    return render_template("reports/index.html", figures=shown.figures, charts=charts, filters=f,
                           query=f.query(), kinds=reports.RECORD_TYPES, as_of=as_of,
                           live=shown.live, priorities=[p.id for p in cat.settings.priorities])


@bp.get("/reports")
@login_required
def index() -> str:
    _allowed()
    return _show(_filters())


@bp.post("/reports/refresh")
@login_required
def refresh() -> WerkzeugResponse:
    """Recompute the figures of the posted filters now, then show them (a redirect)."""
    _allowed()
    f = _filters(request.form)
    max_age = report_snapshots.max_age(current_app.config)
    if max_age:  # (live figures are computed by the page itself)
        report_snapshots.current_figures(session(), f, now(), max_age, fresh=True,
                                         writer=service().sessions)
    query = f.query()
    return redirect(url_for("reports.index") + ("?" + urlencode(query) if query else ""))


@bp.get("/reports/records.csv")
@login_required
def records_csv() -> Response:
    _allowed()
    f = _filters()
    return _csv(reports.RECORD_COLUMNS, reports.records(session(), f), "records")


@bp.get("/reports/<name>.csv")
@login_required
def figure_csv(name: str) -> Response:
    _allowed()
    if name not in reports.FIGURES:
        raise NotFound(f"There is no report named {name[:40]!r}.")
    f = _filters()
    fig = reports.figure(session(), name, f, now())
    return _csv(fig.columns, fig.rows, name)
