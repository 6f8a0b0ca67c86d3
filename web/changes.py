"""Changes: the change calendar, and a change's window, CIs and warnings on its record page."""

from __future__ import annotations

from calendar import Calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from markupsafe import Markup, escape
from sqlalchemy import select

from engine import changes, permissions
from engine.changes import ChangeData
from engine.errors import InvalidInput, NotAllowed
from engine.models import Asset, Request
from engine.records import links_of
from web.context import catalog, service, session, viewer
from web.pages import form_seen_version, load_request

bp = Blueprint("changes", __name__)
#: configuration items the record page offers to add, at most
CI_CHOICES = 500


@dataclass(frozen=True, slots=True)
class ChangePanel:
    """What the change card shows one viewer."""

    req: Request
    data: ChangeData
    agent: bool
    warnings: list[str]
    caused: list[tuple[str, str]]
    start_value: str
    end_value: str
    choices: list[tuple[int, str]]
    #: the calendar month the change is planned in (or was opened in)
    month: str


@bp.app_template_global("change_panel")
def change_panel(req: Request) -> ChangePanel | None:
    """The change card for the request page (None for records that are not changes)."""
    s, cat = session(), catalog()
    data = changes.change_of(s, req)
    if data is None:
        return None
    zone = ZoneInfo(cat.settings.time_zone)
    agent = permissions.is_agent(s, viewer(), req) and req.status == "open"
    caused = [(other.number or "", other.title) for words, link, other in links_of(s, req)
              if link.kind == "caused_by" and link.target_id == req.id]
    choices: list[tuple[int, str]] = []
    if agent:
        choices = [(i, f"{name} ({kind})") for i, name, kind in s.execute(
            select(Asset.id, Asset.name, Asset.type).where(Asset.status != "retired")
            .order_by(Asset.name, Asset.id).limit(CI_CHOICES)).all()]
    return ChangePanel(req, data, agent, changes.warnings_of(s, cat, req), caused,
                       _local(data.start, zone), _local(data.end, zone), choices,
                       (data.start or req.created_at).astimezone(zone).strftime("%Y-%m"))


@bp.app_template_global("change_warnings")
def change_warnings(req: Request) -> list[str]:
    """The change calendar's conflicts and freezes for a change (the approval page shows them)."""
    return changes.warnings_of(session(), catalog(), req) if req.record_type == "change" else []


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if value is not None else ""


@bp.route("/requests/<number>/change", methods=["POST"])
@login_required
def edit(number: str) -> Any:
    req = load_request(number)
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {req.number} can edit its change")
    given: dict[str, Any] = {"planned_start": request.form.get("planned_start", ""),
                             "planned_end": request.form.get("planned_end", ""),
                             "affected": [v for v in request.form.getlist("affected") if v]}
    try:
        service().edit_change(number, viewer(), given, seen_version=form_seen_version())
    except InvalidInput as exc:
        return render_template("changes/panel_page.html", req=req, cpanel=change_panel(req),
                               errors=exc.fields or {"_form": [exc.message]}, values=given), 422
    flash(f"The change {number} is saved.", "success")
    return redirect(url_for("requests.detail", number=number) + "#change-heading")


# ---------------------------------------------------------------- the calendar

RISK_BADGES = {"high": "danger", "medium": "warning", "low": "success"}


def card_html(c: changes.Scheduled, times: str, request_href: str, ci_href: str) -> Markup:
    """A change's card, built once per change and shown in each day it spans: on a month of
    400 changes the template's escaping of a dozen values per card was most of the page's
    time. Type, risk, badge and times are ours (fixed words, formatted times); what people
    typed is escaped."""
    cis = ", ".join(f'<a href="{ci_href}{i}">{escape(n)}</a>' for i, n in c.cis)
    flags = "".join(
        (['<div class="fst-italic">awaiting approval</div>'] if c.awaiting_approval else [])
        + ([f"<div>CIs: {cis}</div>"] if cis else [])
        + [f'<div class="text-danger fw-semibold df-conflict">conflict with {o}</div>'
           for o in c.conflicts]
        + [f'<div class="text-info-emphasis df-in-freeze">inside freeze {escape(n)}</div>'
           for n in c.freezes])
    risk = (f' <span class="badge text-bg-{RISK_BADGES.get(c.risk, "secondary")}">{c.risk} risk'
            '</span>' if c.risk else "")
    state = c.outcome or "" if c.status == "closed" else c.state_label
    return Markup(
        f'<div class="border rounded p-1 mb-1 small df-change'
        f'{" border-danger" if c.conflicts else ""}{" df-awaiting" if c.awaiting_approval else ""}"'
        f' data-number="{c.number}">\n'
        f'          <a href="{request_href}{c.number}">{c.number}</a> {escape(c.title)}\n'
        f'          <div>{times}</div>\n'
        f'          <div><span class="badge text-bg-secondary">{c.change_type}</span>{risk}'
        f' <span class="badge text-bg-light">{escape(state)}</span></div>\n'
        f'          {flags}\n        </div>')


@dataclass(slots=True)
class Day:
    day: date
    in_period: bool
    #: the cards of the changes planned (in part) on the day, each made by `card_html`
    cards: list[Markup]
    freezes: list[str]

    @property
    def cards_html(self) -> Markup:
        """The day's cards in one piece: a template loop over 400 cards cost more than this."""
        return Markup("".join(f"\n        {c}\n        " for c in self.cards))


@bp.route("/changes/calendar")
@login_required
def calendar() -> Any:
    month, week = request.args.get("month"), request.args.get("week")
    view = service().change_calendar(session(), viewer(), month=month, week=week)
    zone = ZoneInfo(catalog().settings.time_zone)
    p = view.period
    if p.kind == "month":
        weeks = Calendar().monthdatescalendar(p.first.year, p.first.month)
    else:
        weeks = [[p.first + timedelta(days=i) for i in range(7)]]
    days = {d: Day(d, p.first <= d <= p.last, [], [f.name for f in view.freezes
                                                   if f.start <= d <= f.end])
            for w in weeks for d in w}
    # url_for once per page: per card it would cost more than the rest of the card
    request_href = url_for("requests.detail", number="0").removesuffix("0")
    ci_href = url_for("cmdb.detail", ci_id=1).removesuffix("1")
    for c in view.changes:  # each change into the cells of the local days it spans
        start, end = c.start.astimezone(zone), c.end.astimezone(zone)
        last = (end - timedelta(microseconds=1)).date()
        card = card_html(c, f"{start:%H:%M}–{end:%H:%M}" if start.date() == last
                         else f"{start:%d %b %H:%M} – {end:%d %b %H:%M}", request_href, ci_href)
        day = start.date()
        while day <= last:
            if day in days:
                days[day].cards.append(card)
            day += timedelta(days=1)
    rows = [[days[d] for d in w] for w in weeks]
    return render_template("changes/calendar.html", view=view, period=p, rows=rows,
                           conflicts=sum(1 for c in view.changes if c.conflicts),
                           frozen=sum(1 for c in view.changes if c.freezes))
