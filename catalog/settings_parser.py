"""Settings (`deskflow.yaml`): time zone, business hours, holidays, priorities."""

from __future__ import annotations

from datetime import date, time
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.change_parser import parse_freezes
from catalog.errors import Severity, SpecError, suggest
from catalog.models import (
    WEBHOOK_EVENTS,
    Holiday,
    Holidays,
    MailIn,
    MajorIncidentRule,
    Priority,
    Settings,
    WebhookSubscription,
)
from catalog.parse import Parsed, Path, duration
from catalog.public_holidays import country_days, region_problem
from catalog.source import SourceDoc

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_settings(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Settings", doc), doc.data
    try:
        ZoneInfo(d["time_zone"])
    except (ZoneInfoNotFoundError, ValueError):
        p.error(("time_zone",), f"unknown time zone {d['time_zone']}",
                "use an IANA name such as Europe/Amsterdam")
    hours = d["business_hours"]
    start = time.fromisoformat(hours["start"])
    end = time(23, 59, 59) if hours["end"] == "24:00" else time.fromisoformat(hours["end"])
    if end <= start:
        p.error(("business_hours", "end"), f"end {hours['end']} is not after start {hours['start']}")
    holidays = _holidays(p, d.get("holidays", []))
    priorities = tuple(
        Priority(pid, pr["name"], duration(pr.get("response")), duration(pr.get("resolution")))
        for pid, pr in d.get("priorities", {}).items())
    known = {pr.id for pr in priorities}
    matrix: dict[tuple[str, str], str] = {}
    rows = d.get("priority_matrix", {})
    urgencies = list(next(iter(rows.values()), {}))
    for impact, row in rows.items():
        if sorted(row) != sorted(urgencies):
            p.error(("priority_matrix", impact), f"impact {impact} lists urgencies "
                    f"{', '.join(row)}; the first row lists {', '.join(urgencies)}",
                    "every impact row names the same urgencies")
        for urgency, pid in row.items():
            if pid not in known:
                p.error(("priority_matrix", impact, urgency), f"unknown priority {pid}",
                        suggest(pid, known))
            matrix[(impact, urgency)] = pid
    default = d.get("default_priority")
    if default is not None and default not in known:
        p.error(("default_priority",), f"unknown priority {default}", suggest(default, known))
    p.model = Settings(
        name=d["name"], time_zone=d["time_zone"],
        working_days=tuple(sorted(_DAYS.index(x) for x in hours["days"])),
        day_start=start, day_end=end, holidays=holidays,
        sla_warning_percent=d.get("sla_warning_percent", 75), priorities=priorities,
        resolution_codes=tuple(d.get("resolution_codes", ())),
        reopen_window=duration(d.get("reopen_window")), agents_see=d.get("agents_see", "groups"),
        satisfaction_expires=duration((d.get("satisfaction") or {}).get("expires")),
        email_actions_expires=duration((d.get("email_actions") or {}).get("expires")),
        major_incident=_major_incident(p, d.get("major_incident")),
        default_priority=default, priority_matrix=MappingProxyType(matrix),
        change_freezes=parse_freezes(p, d.get("change_freezes", [])),
        mail_in=_mail_in(p, d.get("mail_in")), webhooks=_webhooks(p, d.get("webhooks", [])))
    return p


def _webhooks(p: Parsed, raw: list[dict[str, Any]]) -> tuple[WebhookSubscription, ...]:
    """`webhooks`: each names event kinds of WEBHOOK_EVENTS (the schema checks url and secret)."""
    out = []
    for i, hook in enumerate(raw):
        events = set()
        for j, kind in enumerate(hook["events"]):
            if kind not in WEBHOOK_EVENTS:
                p.error(("webhooks", i, "events", j), f"unknown event kind {kind}",
                        suggest(kind, WEBHOOK_EVENTS))
            else:
                events.add(WEBHOOK_EVENTS[kind])
        out.append(WebhookSubscription(hook["url"], hook["secret"], frozenset(events)))
    return tuple(out)


def _mail_in(p: Parsed, raw: dict[str, Any] | None) -> MailIn:
    """`mail_in`: routes name catalog items; addresses compare in lower case."""
    if raw is None:
        return MailIn()
    routes: dict[str, str] = {}
    for address, item in raw.get("routes", {}).items():
        p.ref("item", item, ("mail_in", "routes", address))
        if address.lower() in routes:
            p.error(("mail_in", "routes", address), f"address {address} is routed twice",
                    "addresses compare in lower case")
        routes[address.lower()] = item
    return MailIn(routes=MappingProxyType(routes),
                  unknown_senders=raw.get("unknown_senders", "refuse"),
                  rate_limit=raw.get("rate_limit", 20), forged_from=raw.get("forged_from", "reject"),
                  max_megabytes=raw.get("max_megabytes", 25))


def _major_incident(p: Parsed, raw: dict[str, Any] | None) -> MajorIncidentRule | None:
    """`major_incident`: the group is a reference; `when` reads only the record (`request`)."""
    if raw is None:
        return None
    p.ref("group", raw["group"], ("major_incident", "group"))
    when = (p.expression(raw["when"], ("major_incident", "when"), roots=frozenset({"request"}))
            if "when" in raw else None)
    return MajorIncidentRule(raw["group"], when)


def _holidays(p: Parsed, raw: list[Any] | dict[str, Any]) -> Holidays:
    """The days off: a country's public holidays with dates added and removed, or a list of dates."""
    spec: dict[str, Any] = {"add": raw} if isinstance(raw, list) else raw
    base: Path = ("holidays",) if isinstance(raw, list) else ("holidays", "add")
    add = []
    for i, h in enumerate(spec.get("add", [])):
        if (day := _date(p, (*base, i, "date"), h["date"])) is not None:
            add.append(Holiday(day, h.get("name", "")))
    removed = [(day, ("holidays", "remove", i)) for i, text in enumerate(spec.get("remove", []))
               if (day := _date(p, ("holidays", "remove", i), text)) is not None]
    country, subdivision = spec.get("country"), spec.get("subdivision")
    if country is None:
        for key in ("subdivision", "remove"):
            if key in spec:
                p.error(("holidays", key), f"{key} needs a country", "set holidays.country, e.g. NL")
        return Holidays(add=tuple(add))
    problem = region_problem(country, subdivision)
    if problem is not None:
        key, message, hint = problem
        p.error(("holidays", key), message, hint)
        return Holidays(add=tuple(add))
    for day, path in removed:
        if day not in country_days(country, subdivision, day.year):
            p.warn(path, f"{day} is not a public holiday in {country}",
                   "remove lists the country's holidays on which the desk works")
    return Holidays(country, subdivision, tuple(add), tuple(day for day, _ in removed))


def _date(p: Parsed, path: Path, text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        p.error(path, f"{text} is not a date", "write YYYY-MM-DD")
        return None


def holidays_run_out(p: Parsed, today: date) -> list[SpecError]:
    """Warn when days off listed one by one (no country) end less than a year after today."""
    settings: Settings = p.model
    if settings.holidays.country is not None or not settings.holidays.add:
        return []
    last = max(h.day for h in settings.holidays.add)
    try:
        a_year_on = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        a_year_on = today.replace(year=today.year + 1, day=28)
    if last >= a_year_on:
        return []
    raw = p.doc.data["holidays"]
    base: Path = ("holidays",) if isinstance(raw, list) else ("holidays", "add")
    entries = raw if isinstance(raw, list) else raw["add"]
    i = next(i for i, h in enumerate(entries) if h["date"] == last.isoformat())
    message = (f"the holidays end on {last}, less than a year from today" if last >= today else
               f"the holidays ended on {last}") + ": after that, business time runs on public holidays"
    return [p.doc.error((*base, i, "date"), message,
                        "add the coming year's holidays, or set holidays.country to follow a "
                        "country's public holidays", severity=Severity.WARNING)]

