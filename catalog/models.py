"""Immutable models of a catalog: settings, directory, fields, items, lookups, articles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from catalog.expressions import Expression, Template

_DURATION = re.compile(r"^([1-9][0-9]{0,5}) (business )?(minute|hour|day|week)s?$")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60, "week": 7 * 24 * 60}

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Duration:
    """`3 business days`: an amount of a unit, counted in business time or not."""

    amount: int
    unit: str
    business: bool

    @classmethod
    def parse(cls, text: str) -> Duration:
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"not a duration: {text}")
        return cls(int(m.group(1)), m.group(3), bool(m.group(2)))

    @property
    def minutes(self) -> int:
        """Length in minutes of wall-clock time (for business durations, see business time)."""
        return self.amount * _UNIT_MINUTES[self.unit]

    def __str__(self) -> str:
        unit = self.unit if self.amount == 1 else self.unit + "s"
        return f"{self.amount} {'business ' if self.business else ''}{unit}"


# ---------------------------------------------------------------- settings

@dataclass(frozen=True, slots=True)
class Priority:
    id: str
    name: str
    response: Duration | None
    resolution: Duration | None


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str


@dataclass(frozen=True, slots=True)
class Holidays:
    """Days off: a country's public holidays for any year, plus `add` and minus `remove`.

    The country's days come from the holidays package, one year at a time, when business
    time reaches that year (`catalog.public_holidays.days_off`).
    """

    country: str | None = None
    subdivision: str | None = None
    add: tuple[Holiday, ...] = ()
    remove: tuple[date, ...] = ()


@dataclass(frozen=True, slots=True)
class Freeze:
    """A change freeze: no changes planned from `start` to `end`, both days included."""

    name: str
    start: date
    end: date


@dataclass(frozen=True, slots=True)
class MajorIncidentRule:
    """deskflow.yaml `major_incident`: the group told at once, and when an incident is major by itself."""

    group: str
    #: reads `request` (e.g. `request.priority == 'p1'`); None: only agents declare one
    when: Expression | None = None


#: the event kinds deskflow.yaml's `webhooks` may subscribe to -> the audit event each stands for
#: (engine.webhook_subscriptions; docs/api.md "Webhooks")
WEBHOOK_EVENTS: Mapping[str, str] = MappingProxyType({
    **{e: e for e in (
        "submitted", "transition", "comment", "approval_requested", "approval_approved",
        "approval_rejected", "approval_delegated", "approval_escalated", "approval_timeout",
        "task_created", "task_claimed", "task_reassigned", "task_completed", "task_escalated",
        "asked_requester", "answered", "asset_created", "timer_fired", "needs_attention",
        "attention_retried", "attention_routed", "record_changed", "linked", "unlinked",
        "watcher_added", "problem_changed", "resolved", "reopened", "resolution_confirmed",
        "resolved_by_problem", "merged", "merged_in", "major_declared", "major_stood_down",
        "children_resolved", "closed_administratively", "attachment_added", "attachment_deleted",
        "mail_received", "email_action", "satisfaction", "change_changed")},
    "approved": "approval_approved", "rejected": "approval_rejected",
})


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """One entry of `webhooks` in deskflow.yaml: audit events of these kinds are POSTed, signed."""

    url: str
    #: the environment variable holding the HMAC secret (as a workflow's `webhook` action)
    secret: str
    #: the audit event names (WEBHOOK_EVENTS' values) sent to the URL
    events: frozenset[str]


@dataclass(frozen=True, slots=True)
class MailIn:
    """`mail_in` in deskflow.yaml: how `deskflow mail-in` routes and filters inbound email."""

    #: lower-case address -> catalog item id a new email to it opens
    routes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: contact (create an imported contact who cannot sign in) | refuse (reply with a refusal)
    unknown_senders: str = "refuse"
    #: messages per sender per hour; more are ignored
    rate_limit: int = 20
    #: a known address whose Authentication-Results say dmarc=fail or spf=fail: reject | accept
    forged_from: str = "reject"
    #: larger messages are refused before they are parsed
    max_megabytes: int = 25


@dataclass(frozen=True, slots=True)
class Settings:
    """deskflow.yaml."""

    name: str = "Deskflow"
    time_zone: str = "UTC"
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday is 0
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays: Holidays = Holidays()
    sla_warning_percent: int = 75
    #: how a record can be resolved; empty: resolving asks for no code
    resolution_codes: tuple[str, ...] = ()
    #: how long after resolution the caller may reopen it (None: 3 business days)
    reopen_window: Duration | None = None
    #: how long an emailed satisfaction link stays valid (None: 14 days; engine.satisfaction)
    satisfaction_expires: Duration | None = None
    #: how long an emailed action link stays valid (None: 7 days; engine.email_links)
    email_actions_expires: Duration | None = None
    #: what the agents' list shows an agent: all records, or those of their groups (engine.worklist)
    agents_see: str = "groups"
    #: major incidents (engine.major); None: no group is told, no rule flags one
    major_incident: MajorIncidentRule | None = None
    priorities: tuple[Priority, ...] = ()
    default_priority: str | None = None
    #: (impact, urgency) -> priority id
    priority_matrix: Mapping[tuple[str, str], str] = field(
        default_factory=lambda: MappingProxyType({}))
    #: periods in which changes should not be made (the change calendar flags them)
    change_freezes: tuple[Freeze, ...] = ()
    #: inbound email (engine.mail_in)
    mail_in: MailIn = MailIn()
    #: outgoing webhooks per event kind (engine.webhook_subscriptions)
    webhooks: tuple[WebhookSubscription, ...] = ()

    def priority(self, priority_id: str) -> Priority | None:
        return next((p for p in self.priorities if p.id == priority_id), None)

    def priority_for(self, impact: str, urgency: str) -> str | None:
        return self.priority_matrix.get((impact, urgency))

    @property
    def impacts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for i, _ in self.priority_matrix))

    @property
    def urgencies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u for _, u in self.priority_matrix))


# ---------------------------------------------------------------- directory

@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    email: str
    manager: str | None = None
    title: str = ""
    department: str = ""
    location: str = ""
    roles: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    description: str = ""
    email: str = ""
    manager: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Directory:
    """directory.yaml: people, groups and roles, with lookups by id."""

    people: tuple[Person, ...] = ()
    groups: tuple[Group, ...] = ()
    roles: tuple[Role, ...] = ()
    _people: Mapping[str, Person] = field(default_factory=lambda: EMPTY, compare=False, repr=False)
    _groups: Mapping[str, Group] = field(default_factory=lambda: EMPTY, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_people", MappingProxyType({p.id: p for p in self.people}))
        object.__setattr__(self, "_groups", MappingProxyType({g.id: g for g in self.groups}))

    def person(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    def group(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def role(self, role_id: str) -> Role | None:
        return next((r for r in self.roles if r.id == role_id), None)

    def groups_of(self, person_id: str) -> tuple[str, ...]:
        return tuple(g.id for g in self.groups if person_id in g.members)

    def holders_of(self, role_id: str) -> tuple[str, ...]:
        return tuple(p.id for p in self.people if role_id in p.roles and p.active)

    def managers_of(self, person_id: str) -> tuple[str, ...]:
        """The manager chain upwards, nearest first, stopping at a cycle."""
        chain: list[str] = []
        current = self.person(person_id)
        while current and current.manager and current.manager not in chain:
            chain.append(current.manager)
            current = self.person(current.manager)
        return tuple(chain)


# ---------------------------------------------------------------- fields

class FieldType(StrEnum):
    STRING = "string"
    TEXTAREA = "textarea"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MULTICHOICE = "multichoice"
    DATE = "date"
    EMAIL = "email"
    URL = "url"
    PERSON = "person"
    TABLE = "table"
    ASSET = "asset"
    FILE = "file"


TEXT_TYPES = frozenset({FieldType.STRING, FieldType.TEXTAREA, FieldType.EMAIL, FieldType.URL})
CHOICE_TYPES = frozenset({FieldType.CHOICE, FieldType.MULTICHOICE})
DEFAULT_MAX_LENGTH = {FieldType.STRING: 200, FieldType.TEXTAREA: 5000,
                      FieldType.EMAIL: 254, FieldType.URL: 2000}
#: rows a table answer may have when its field gives no max_items
MAX_TABLE_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Field:
    """One form field; the same model feeds WTForms, JSON Schema and the server checks."""

    name: str
    type: FieldType
    label: str
    required: bool = False
    required_if: Expression | None = None
    show_if: Expression | None = None
    default: Any = None
    default_template: Template | None = None
    help: str = ""
    placeholder: str = ""
    pattern: str | None = None
    min: float | date | None = None
    max: float | date | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    choices: tuple[Choice, ...] = ()
    choices_from: str | None = None
    depends_on: str | None = None
    columns: tuple[Field, ...] = ()
    #: an asset field's CI type, and whether only the requested-for person's items are offered
    ci_type: str | None = None
    owned_by: str | None = None
    #: a file field: several files or one, and the kinds accepted (catalog.fields.FILE_KINDS;
    #: empty: every kind the instance allows)
    multiple: bool = False
    accept: tuple[str, ...] = ()

    @property
    def effective_max_length(self) -> int | None:
        return self.max_length or DEFAULT_MAX_LENGTH.get(self.type)

    @property
    def max_rows(self) -> int:
        """Rows a table answer may have: its `max_items`, else MAX_TABLE_ROWS."""
        return min(self.max_items, MAX_TABLE_ROWS) if self.max_items is not None else MAX_TABLE_ROWS

    @property
    def is_conditional(self) -> bool:
        return self.show_if is not None or self.required_if is not None


# ---------------------------------------------------------------- items, lookups, articles

@dataclass(frozen=True, slots=True)
class PriorityRule:
    """A fixed priority, or impact and urgency fields looked up in the matrix."""

    fixed: str | None = None
    impact_field: str | None = None
    urgency_field: str | None = None


@dataclass(frozen=True, slots=True)
class Concerns:
    """The form fields naming the service (a choice) and the configuration item (an asset)."""

    service: str | None = None
    ci: str | None = None


@dataclass(frozen=True, slots=True)
class FormCheck:
    """A rule across fields: answers for which `when` holds are refused with `message`."""

    when: Expression
    message: str
    #: the field the message belongs to; None puts it at the top of the form
    field: str | None = None


#: change types, and the risk levels a change's risk expression may give
CHANGE_TYPES = ("standard", "normal", "emergency")
RISK_LEVELS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class PlannedTime:
    """A planned moment from the form: a date field and, optionally, a `HH:MM` text field."""

    date_field: str
    time_field: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSpec:
    """An item's `change:` block (catalog.change_parser)."""

    type: str
    risk: Expression | None = None
    planned_start: PlannedTime | None = None
    planned_end: PlannedTime | None = None
    affected: tuple[str, ...] = ()


#: the kinds of record an item can open, in the order agents see them
RECORD_TYPES = ("request", "incident", "problem", "change")


@dataclass(frozen=True, slots=True)
class CatalogItem:
    id: str
    name: str
    category: str
    summary: str
    workflow: str
    fields: tuple[Field, ...]
    description: str = ""
    keywords: tuple[str, ...] = ()
    icon: str = ""
    owner: str | None = None
    visible_to: tuple[str, ...] = ("everyone",)
    priority: PriorityRule | None = None
    articles: tuple[str, ...] = ()
    order_for_others: bool = True
    checks: tuple[FormCheck, ...] = ()
    #: request | incident | problem | change (`RECORD_TYPES`)
    record_type: str = "request"
    #: the field whose answer becomes the record's category (default: the item's category)
    category_from: str | None = None
    #: how a change record's type, risk, window and CIs come from the form (change items only)
    change: ChangeSpec | None = None
    #: the fields naming the service and the configuration item the record concerns (`concerns:`)
    concerns: Concerns | None = None
    source: PurePosixPath = field(default=PurePosixPath(), compare=False)

    def get_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class FieldSet:
    id: str
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class LookupValue:
    value: str
    label: str
    parent: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Lookup:
    id: str
    name: str
    values: tuple[LookupValue, ...]

    def get(self, value: str) -> LookupValue | None:
        return next((v for v in self.values if v.value == value), None)


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    body: str
    summary: str = ""
    category: str = "General"
    keywords: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    visible_to: tuple[str, ...] = ("everyone",)
    updated: date | None = None


@dataclass(frozen=True, slots=True)
class View:
    """A shared view of the agents' list: filters (name -> text) and a sort (catalog.view_parser)."""

    id: str
    name: str
    filters: Mapping[str, str]
    sort: str = "-updated"


@dataclass(frozen=True, slots=True)
class Response:
    """A canned reply: a checked template agents insert into a request's comment box."""

    id: str
    title: str
    body: Template
    visible_to_groups: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
