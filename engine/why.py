"""Decisions in words: why this approver, why this branch, why this priority, why the SLA is due
then or paused.

Every function returns one sentence with the values the decision used, for the request page,
the approver's view and `deskflow simulate`. A branch is explained when it is taken (the
transition's audit event keeps the sentence: the values may change later); the others are
worked out from what the rows hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from catalog.expressions import Expression, ExpressionError, path_value
from catalog.models import Duration, Settings
from catalog.public_holidays import country_days
from catalog.workflow import Workflow
from engine.businesstime import BusinessCalendar

#: days listed by name before "and N more"
MAX_DAYS_LISTED = 6
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---------------------------------------------------------------- values


def value_text(value: Any) -> str:
    """A value as an admin wrote it in YAML: text quoted, lists bracketed, nothing as "no value"."""
    if value is None or value == "" or value == []:
        return "no value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:60] + ("…" if len(value) > 60 else ""))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value[:6]) + (", …" if len(value) > 6 else "") + "]"
    return str(value)


def values_seen(expression: Expression, names: Mapping[str, Any]) -> str:
    """`form.cost = 1500, requester.department = 'sales'`: the names the expression read."""
    paths = sorted(p for p in expression.paths if len(p) > 1 or p[0] in names)
    return ", ".join(f"{'.'.join(p)} = {value_text(path_value(names, p))}" for p in paths)


def _tested(expression: Expression, names: Mapping[str, Any],
            functions: Mapping[str, Callable[..., Any]] | None) -> tuple[bool | None, str]:
    """(held, words): whether the condition held, with the values it saw."""
    seen = values_seen(expression, names)
    try:
        held = expression.test(names, functions)
    except ExpressionError as exc:
        return None, f"`{expression.source}` could not be evaluated ({exc.message})"
    verb = "held" if held else "did not hold"
    return held, f"`{expression.source}` {verb}" + (f" ({seen})" if seen else "")


# ---------------------------------------------------------------- branches


def branch(wf: Workflow, state: str, names: Mapping[str, Any],
           functions: Mapping[str, Callable[..., Any]] | None = None) -> str:
    """Why a decision state routed where it did: the routes tried in order and what they saw."""
    routes = sorted((t for t in wf.transitions() if t.source == state and t.trigger == "route"),
                    key=lambda t: t.is_default)
    tried: list[str] = []
    for t in routes:
        if t.condition is None:
            if not tried:
                return f"to {t.dest}: its only route"
            return f"to {t.dest}, the last route, because no condition held: " + "; ".join(tried)
        held, words = _tested(t.condition, names, functions)
        if held:
            return f"to {t.dest} because {words}" + (
                f" (after: {'; '.join(tried)})" if tried else "")
        tried.append(f"{words}, so not {t.dest}")
    return "no route held: " + "; ".join(tried)


# ---------------------------------------------------------------- approvers


def approver(source: str, approver_id: str, names: Mapping[str, str],
             delegated_from: str | None = None, decided_by: str | None = None) -> str:
    """Why this person approves, from the approval's `source` (engine.approvals.resolve)."""
    who = names.get(approver_id, approver_id)

    def name(pid: str) -> str:
        return names.get(pid, pid)

    base = source
    climbed = base.endswith(" (next manager up)")
    if climbed:
        base = base.removesuffix(" (next manager up)")
    if climbed:
        text = (f"`{base}` named the requester, the person the request is for, or someone "
                f"inactive, so their next manager up, {who}, decides")
    elif base.startswith("delegated by "):
        by = base.removeprefix("delegated by ")
        text = f"{who} decides because {name(by)} delegated the approval to them"
        if delegated_from and delegated_from != by:
            text += f" (it was {name(delegated_from)}'s)"
    elif base.startswith("escalated from "):
        text = (f"{who} decides because the approval timed out with "
                f"{name(base.removeprefix('escalated from '))}, and it escalates to their manager")
    elif base == "requester's manager chain":
        text = (f"{who} decides as the requester's nearest manager: every approver the workflow "
                "names is the requester, the person it is for, or inactive")
    elif base == "role:admin (no other approver)":
        text = f"{who} decides as an admin: nobody else could approve"
    elif base.startswith("group:"):
        text = f"{who} is a member of group {base.removeprefix('group:')}, which the workflow names"
    elif base.startswith("role:"):
        text = f"{who} holds the role {base.removeprefix('role:')}, which the workflow names"
    elif base.startswith("person:"):
        text = f"{who} is named in the workflow ({base})"
    elif base:
        text = f"{who} is who `{base}` named for this request"
    else:
        text = f"{who} was asked"
    if decided_by and decided_by != approver_id:
        text += f"; {name(decided_by)} decided, standing in for {who}"
    return text


# ---------------------------------------------------------------- priority


def priority(item: Any, settings: Settings, answers: Mapping[str, Any], chosen: str | None) -> str:
    """Why the record has its priority: the item's fixed one, the matrix, or the default."""
    if chosen is None:
        return "no priority: the item sets none and the settings have no default"
    rule = getattr(item, "priority", None)
    shown = settings.priority(chosen)
    label = f"{chosen} ({shown.name})" if shown and shown.name != chosen else chosen
    if rule is not None and rule.fixed:
        return f"{label}: the item fixes it"
    if rule is not None and rule.impact_field and rule.urgency_field:
        impact, urgency = answers.get(rule.impact_field), answers.get(rule.urgency_field)
        if settings.priority_for(str(impact), str(urgency)) == chosen:
            return (f"{label}: the priority matrix gives it for impact {value_text(impact)} "
                    f"({rule.impact_field}) and urgency {value_text(urgency)} ({rule.urgency_field})")
    if settings.default_priority == chosen:
        return f"{label}: the settings' default priority"
    return f"{label}: set on the record"


# ---------------------------------------------------------------- SLA


def hours_text(settings: Settings) -> str:
    """`Mon–Fri 09:00–17:00 Europe/London`."""
    days = sorted(settings.working_days)
    if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
        day_text = f"{_DAY_NAMES[days[0]]}–{_DAY_NAMES[days[-1]]}"
    else:
        day_text = ", ".join(_DAY_NAMES[d] for d in days) or "no days"
    return f"{day_text} {settings.day_start:%H:%M}–{settings.day_end:%H:%M} {settings.time_zone}"


def days_off_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> list[str]:
    """The local days from start to end that are not working days: `Sat 28 Nov (weekend)`."""
    settings = calendar.settings
    first, last = start.astimezone(calendar.zone).date(), end.astimezone(calendar.zone).date()
    out: list[str] = []
    day = first
    while day <= last and len(out) <= MAX_DAYS_LISTED + 50:
        if day.weekday() not in calendar.working_days:
            out.append(f"{_day(day)} (not a working day)")
        elif calendar.is_holiday(day):
            out.append(f"{_day(day)} ({_holiday_name(settings, day)})")
        day += timedelta(days=1)
    if len(out) > MAX_DAYS_LISTED:
        return [*out[:MAX_DAYS_LISTED], f"and {len(out) - MAX_DAYS_LISTED} more"]
    return out


def _day(day: date) -> str:
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {day:%b}"


def _holiday_name(settings: Settings, day: date) -> str:
    added = next((h.name for h in settings.holidays.add if h.day == day), None)
    if added:
        return added
    if settings.holidays.country:
        name = country_days(settings.holidays.country, settings.holidays.subdivision,
                            day.year).get(day)
        if name:
            return name
    return "a holiday"


def sla_due(calendar: BusinessCalendar, what: str, target: Duration, source: str,
            start: datetime, due: datetime) -> str:
    """Why a target falls due when it does: the duration, its source, the calendar it counts on."""
    zone = calendar.zone
    text = (f"{what} due {_at(due, zone)}: {target} ({source}) from {_at(start, zone)}")
    if not target.business:
        return text + ", counted on the clock"
    text += f", counted on business hours {hours_text(calendar.settings)}"
    expected = calendar.add(start, target)
    if due > expected:
        text += (f"; {calendar.between(expected, due)} business minutes later "
                 "for the time the clock was paused")
    skipped = days_off_between(calendar, start, due)
    if skipped:
        text += "; not counted: " + ", ".join(skipped)
    return text


def _at(at: datetime, zone: Any) -> str:
    local = at.astimezone(zone)
    return f"{_DAY_NAMES[local.weekday()]} {local.day} {local:%b %Y %H:%M}"


def sla_targets(settings: Settings, wf: Workflow, priority_id: str | None
                ) -> list[tuple[str, Duration, str]]:
    """(`Response`|`Resolution`, target, where it comes from) for the workflow's SLA."""
    if wf.sla is None:
        return []
    out: list[tuple[str, Duration, str]] = []
    if wf.sla.from_priority:
        prio = settings.priority(priority_id or "")
        if prio is None:
            return []
        for what, target in (("Response", prio.response), ("Resolution", prio.resolution)):
            if target is not None:
                out.append((what, target, f"priority {prio.id}'s {what.lower()} target"))
        return out
    for what, target in (("Response", wf.sla.response), ("Resolution", wf.sla.resolution)):
        if target is not None:
            out.append((what, target, f"workflow {wf.id}'s {what.lower()} target"))
    return out


def sla_paused(paused_at: datetime, waiting_on_requester: bool, resolved_at: datetime | None,
               zone: Any) -> str:
    """Why the clocks are stopped."""
    since = _at(paused_at, zone)
    if waiting_on_requester:
        return (f"paused since {since}: waiting for the requester to answer a question; "
                "the due times move later by the business time spent waiting")
    if resolved_at is not None:
        return (f"paused since {since}: resolved, waiting for the caller to confirm the fix "
                "or for the record to close")
    return f"paused since {since}"


def people_in(source: str) -> list[str]:
    """The person an approval's `source` names besides its approver (who delegated, who timed out)."""
    for prefix in ("delegated by ", "escalated from "):
        if source.startswith(prefix):
            return [source.removeprefix(prefix)]
    return []
