"""The floor for benchmarks/web.py: a hand-written Flask view doing the work of an order POST.

    gunicorn -w 2 'benchmarks.web_support.bare:create_app()'
    (DESKFLOW_DATABASE_URL, DESKFLOW_SECRET_KEY and DESKFLOW_BENCH_FLOOR_ROWS set)

POST /items/mobile-phone does by hand what Deskflow's order page does with a valid order:
- the sign-in lookup: Deskflow's session cookie (Flask's signed cookie session, read with the
  same secret and cookie name) holds Flask-Login's `_user_id`, the random token whose SHA-256
  names the `login_sessions` row; one Core SELECT joins that row to its active person, and the
  idle and absolute timeouts are checked as web.auth does; 401 without a live session;
- the CSRF check with Flask-WTF's own `validate_csrf` (same secret, same session); 400 if bad;
- the posted fields parsed into the answers as Deskflow stores them (the mobile-phone form's
  fields written out by hand, with their required, choice and range checks; 422 if wrong);
- in ONE write transaction (engine.db's writer: BEGIN IMMEDIATE on SQLite), with SQLAlchemy
  Core, the rows one real Deskflow order wrote. benchmarks/web.py finds them by diffing every
  table around a test order (`table_marks`, `rows_written`) and names them in
  DESKFLOW_BENCH_FLOOR_ROWS (not the rows the request refers to, such as a workflow version
  stored on its first use: those are once for all); they are read once at start-up. Per POST
  the request row is inserted with these answers, its number set from its id (as the service
  does), and every other row again with the new request's id and the new ids of the rows it
  refers to, its times moved by as much as the request's, the old number replaced in its
  text, a fresh nonce for an emailed action link and the link's token signed anew; and the
  person's recent article reads from the item's form are marked ordered, as Deskflow's view
  does afterwards (in a second transaction there).
It decides nothing: the state, approvers, due times and emails are the test order's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, request, session
from flask_wtf.csrf import validate_csrf
from itsdangerous import URLSafeSerializer
from sqlalchemy import Connection, Integer, Table, func, insert, select, update
from wtforms import ValidationError

from engine.db import make_engine, writer
from engine.models import Base
from engine.models import Request as RequestRow

ITEM = "mobile-phone"
#: Deskflow's defaults (web.config): session cookie, timeouts, CSRF token lifetime
COOKIE = "deskflow"
IDLE, LIFETIME = timedelta(hours=2), timedelta(hours=12)
CSRF_TIME_LIMIT = 8 * 3600
#: engine.knowledge: article reads this recent are marked as followed by an order
DEFLECTION_WINDOW = timedelta(minutes=30)
#: engine.email_links: the salt of the emailed one-click links' tokens
LINK_SALT = "deskflow-email-action"
LINK = re.compile(r"/email-actions/([A-Za-z0-9_.\-]+)")
#: columns naming the person who ordered (requester, requested for, actor of `submitted`)
ORDERER_COLUMNS = ("requester_id", "requested_for_id", "actor_id")

FloorRows = dict[str, dict[str, list[Any]]]


# ---------------------------------------------------------------- finding what one order writes

def _has_int_id(table: Table) -> bool:
    return "id" in table.c and table.c.id.primary_key and isinstance(table.c.id.type, Integer)


def _marks(conn: Connection) -> dict[str, int]:
    return {name: conn.scalar(select(func.max(table.c.id)) if _has_int_id(table)
                              else select(func.count()).select_from(table)) or 0
            for name, table in Base.metadata.tables.items()}


def table_marks(url: str) -> dict[str, int]:
    """Each table's largest id, or its row count where it has no integer id."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _marks(conn)
    finally:
        engine.dispose()


@dataclass
class Written:
    """The rows one order wrote (table -> {key column: values}), and tables it changed otherwise."""

    rows: FloorRows = field(default_factory=dict)
    uncopied: list[str] = field(default_factory=list)
    #: rows the request refers to (a workflow's first use stores its version): once for all
    shared: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(values) for name, keys in self.rows.items() for values in keys.values()}


def rows_written(url: str, marks: Mapping[str, int]) -> Written:
    """The rows written since `marks` were taken, while one order (and nothing else) was made."""
    engine = make_engine(url)
    out = Written()
    try:
        with engine.connect() as conn:
            after = _marks(conn)
            new = list(conn.scalars(select(RequestRow.id).where(RequestRow.id > marks["requests"])))
            if len(new) != 1:
                raise RuntimeError(f"one order wrote {len(new)} requests, not 1")
            requests = Base.metadata.tables["requests"]
            referred = {fk.column.table.name for fk in requests.foreign_keys}
            for name, table in Base.metadata.tables.items():
                if after[name] == marks[name]:
                    continue
                if name in referred:
                    out.shared[name] = after[name] - marks[name]
                elif _has_int_id(table):
                    out.rows[name] = {"id": list(conn.scalars(
                        select(table.c.id).where(table.c.id > marks[name]).order_by(table.c.id)))}
                elif "request_id" in table.c:
                    out.rows[name] = {"request_id": new}
                else:
                    out.uncopied.append(name)
    finally:
        engine.dispose()
    return out


def read_rows(conn: Connection, rows: FloorRows) -> dict[str, list[dict[str, Any]]]:
    """The rows `rows` names, table by table, in id order."""
    out = {}
    for name, keys in rows.items():
        table = Base.metadata.tables[name]
        ((column, values),) = keys.items()
        order = table.c.id if _has_int_id(table) else table.c[column]
        out[name] = [dict(r) for r in conn.execute(
            select(table).where(table.c[column].in_(values)).order_by(order)).mappings()]
    return out


def differences(url: str, first: Written, second: Written) -> list[str]:
    """How the rows of two orders differ, beyond ids, numbers, times, nonces and link tokens."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            a, b = read_rows(conn, first.rows), read_rows(conn, second.rows)
    finally:
        engine.dispose()
    found = []
    for name in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(name, []), b.get(name, [])
        if len(rows_a) != len(rows_b):
            found.append(f"{name}: {len(rows_a)} rows against {len(rows_b)}")
            continue
        for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
            na, nb = _neutral(name, ra, a), _neutral(name, rb, b)
            found += [f"{name}[{i}].{col}: {na[col]!r} against {nb.get(col)!r}"
                      for col in na if na[col] != nb.get(col)]
    return found


def _neutral(name: str, row: dict[str, Any], order: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A row with what differs between two orders by design put in words."""
    req = order["requests"][0]
    table = Base.metadata.tables[name]
    out = {}
    for col, value in row.items():
        column = table.c[col]
        if col == "id" and _has_int_id(table) or col in ("nonce", "message_digest") \
                or any(fk.column.table.name in order for fk in column.foreign_keys):
            continue  # the new order's own ids, random and derived from them
        text = json.dumps(value, default=str, sort_keys=True)
        text = text.replace(str(req["number"]), "<number>")
        text = re.sub(rf"(?<![0-9]){req['id']}(?=:)", "<id>", text)
        text = LINK.sub("/email-actions/<token>", text)
        out[col] = re.sub(r"\d{4}-\d\d-\d\d[T ][0-9:.+]+", "<time>", text)
    return out


# ---------------------------------------------------------------- the rows, as a template

@dataclass(frozen=True, slots=True)
class Slot:
    """A value made per order; `kind`: request_id, number, me, time, iso, row_id, nonce,
    link or digest; `ref` what it stands for (a time, a row's old id, a link's old id)."""

    kind: str
    ref: Any = None


@dataclass(frozen=True, slots=True)
class Text:
    """A string with slots in it (the number, the request's id, a link's token)."""

    parts: tuple[str | Slot, ...]


@dataclass(frozen=True, slots=True)
class TableRows:
    table: Table
    #: other rows refer to these by id: inserted one at a time, keeping the new ids
    referred: bool
    #: (the captured row's id, or None, and its template)
    rows: list[tuple[int | None, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Template:
    """The rows of one order, with what changes from order to order made into slots."""

    request: dict[str, Any]
    tables: list[TableRows]
    #: the captured request's created_at: every time moves by as much as this one
    created_at: datetime


def make_template(captured: dict[str, list[dict[str, Any]]], secret_key: str) -> Template:
    """Turn one order's rows (`read_rows`) into a template."""
    req = captured["requests"][0]
    number, old_id, orderer = req["number"], req["id"], req["requester_id"]
    signer = URLSafeSerializer(secret_key, salt=LINK_SALT)
    marks = re.compile(rf"{re.escape(number)}|(?<![0-9]){old_id}(?=:)|{LINK.pattern}")

    def text(value: str) -> str | Text:
        parts: list[str | Slot] = []
        at = 0
        for m in marks.finditer(value):
            parts.append(value[at:m.start()])
            if m.group(1):
                link = signer.loads(m.group(1))
                parts += ["/email-actions/", Slot("link", (link["e"], link["a"]))]
            else:
                parts.append(Slot("number" if m.group() == number else "request_id"))
            at = m.end()
        if parts:
            return Text((*parts, value[at:]))
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
        return Text((Slot("iso", when),)) if when.tzinfo else value

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, datetime):
            return Slot("time", value)
        return text(value) if isinstance(value, str) else value

    def template_of(table: Table, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col, value in row.items():
            if col == "id" and _has_int_id(table):
                continue
            refers = {fk.column.table.name for fk in table.c[col].foreign_keys}
            if "requests" in refers:
                out[col] = Slot("request_id")
            elif refers & captured.keys():
                out[col] = Slot("row_id", ((refers & captured.keys()).pop(), value))
            elif col in ORDERER_COLUMNS and value == orderer:
                out[col] = Slot("me")
            elif col == "nonce":
                out[col] = Slot("nonce", row["id"])
            elif col == "message_digest":
                out[col] = Slot("digest")
            else:
                out[col] = walk(value)
        return out

    made = [(table, [(r.get("id"), template_of(table, r)) for r in captured[table.name]])
            for table in Base.metadata.sorted_tables  # a row's references come first
            if table.name in captured and table.name != "requests"]
    slots = [s for _, rows in made for _, r in rows for s in _slots(r)]
    referred = {s.ref[0] for s in slots if s.kind == "row_id"} | \
        {"email_actions" for s in slots if s.kind == "link"}
    tables = sorted((TableRows(t, t.name in referred, rows) for t, rows in made),
                    key=lambda t: not t.referred)  # stable: references still come first
    request = template_of(Base.metadata.tables["requests"], req)
    for col in ("number", "answers"):
        request.pop(col, None)
    return Template(request, tables, req["created_at"])


def _slots(value: Any) -> list[Slot]:
    if isinstance(value, Slot):
        return [value]
    if isinstance(value, Text):
        return [p for p in value.parts if isinstance(p, Slot)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _slots(v)]
    if isinstance(value, list):
        return [s for v in value for s in _slots(v)]
    return []


# ---------------------------------------------------------------- one order

@dataclass
class Fill:
    """What one order puts into the template's slots."""

    me: str
    shift: timedelta
    signer: URLSafeSerializer
    request_id: int = 0
    number: str = ""
    #: (table, old id) -> new id; old email_actions id -> its new nonce
    ids: dict[tuple[str, int], int] = field(default_factory=dict)
    nonces: dict[int, str] = field(default_factory=dict)

    def value(self, v: Any) -> Any:
        if isinstance(v, Slot):
            return self.slot(v)
        if isinstance(v, Text):
            return "".join(p if isinstance(p, str) else str(self.slot(p)) for p in v.parts)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def slot(self, s: Slot) -> Any:
        match s.kind:
            case "request_id":
                return self.request_id
            case "number":
                return self.number
            case "me":
                return self.me
            case "time":
                return s.ref + self.shift
            case "iso":
                return (s.ref + self.shift).isoformat()
            case "row_id":
                return self.ids[s.ref]
            case "nonce":
                return self.nonces.setdefault(s.ref, secrets.token_hex(16))
            case "link":
                old, action = s.ref
                return self.signer.dumps({"e": self.ids[("email_actions", old)], "a": action,
                                          "n": self.nonces[old]})
        raise ValueError(f"no slot {s.kind}")

    def row(self, template: dict[str, Any]) -> dict[str, Any]:
        out = {col: self.value(v) for col, v in template.items() if col != "message_digest"}
        if "message_digest" in template:  # engine.outbox: the key's digest names the email
            out["message_digest"] = hashlib.sha256(out["idempotency_key"].encode()).hexdigest()[:32]
        return out


def write_order(conn: Connection, template: Template, fill: Fill, answers: dict[str, Any],
                now: datetime) -> str:
    """Insert one order's rows; its number."""
    requests = Base.metadata.tables["requests"]
    fill.request_id = conn.execute(insert(requests).values(
        **fill.row(template.request), answers=answers).returning(requests.c.id)).scalar_one()
    fill.number = f"REQ-{fill.request_id:06d}"
    conn.execute(update(requests).where(requests.c.id == fill.request_id).values(number=fill.number))
    for t in template.tables:
        if t.referred:
            for old, row in t.rows:
                fill.ids[(t.table.name, old or 0)] = conn.execute(
                    insert(t.table).values(**fill.row(row)).returning(t.table.c.id)).scalar_one()
        else:
            conn.execute(insert(t.table), [fill.row(row) for _, row in t.rows])
    views = Base.metadata.tables["article_views"]
    conn.execute(update(views).where(
        views.c.person_id == fill.me, views.c.item_id == ITEM, views.c.ordered.is_(False),
        views.c.viewed_at >= now - DEFLECTION_WINDOW, views.c.viewed_at <= now)
        .values(ordered=True, ordered_at=now))
    return fill.number


# ---------------------------------------------------------------- the form

class Refused(Exception):
    """A field's answer is missing or wrong (422)."""


def _text(form: Mapping[str, str], name: str, required: bool = False) -> str | None:
    value = (form.get(name) or "").strip()
    if required and not value:
        raise Refused(f"{name} is required")
    return value or None


def _choice(form: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (form.get(name) or "").strip()
    if value not in choices:
        raise Refused(f"{name} must be one of {', '.join(choices)}")
    return value


def _number(form: Mapping[str, str], name: str, low: int, high: int,
            whole: bool = False) -> int | float | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Refused(f"{name} must be a number") from None
    if not low <= value <= high or whole and not value.is_integer():
        raise Refused(f"{name} must be a {'whole ' if whole else ''}number from {low} to {high}")
    return int(value) if value.is_integer() else value


def answers_of(form: Mapping[str, str]) -> dict[str, Any]:
    """The mobile-phone form's answers as Deskflow stores them (examples/acme/items,
    fieldsets cost-center and delivery-address): every field, None when empty or hidden."""
    keep = (form.get("keep_number") or "").strip().lower() not in ("", "false", "n", "no", "off", "0")
    building = _choice(form, "building", ("ams-hq", "rtm", "utr", "home"))
    home = building == "home"
    cost_center = _text(form, "cost_center", required=True) or ""
    if not re.fullmatch(r"CC-[0-9]{4}", cost_center):
        raise Refused("cost_center must look like CC-1234")
    current = _text(form, "current_number", required=keep) if keep else None
    if current is not None and not re.fullmatch(r"\+31 ?6 ?[0-9]{8}", current):
        raise Refused("current_number must look like +31 6 12345678")
    floor = None if home else _number(form, "floor", 0, 12, whole=True)
    if not home and floor is None:
        raise Refused("floor is required")
    return {"device": _choice(form, "device", ("iphone", "pixel", "galaxy")),
            "data_plan": _choice(form, "data_plan", ("10gb", "unlimited")),
            "monthly_limit": _number(form, "monthly_limit", 0, 250),
            "keep_number": keep, "current_number": current, "cost_center": cost_center,
            "department": _text(form, "department"), "building": building, "floor": floor,
            "desk": None if home else _text(form, "desk"),
            "home_address": _text(form, "home_address", required=True) if home else None}


# ---------------------------------------------------------------- the app

def create_app() -> Flask:
    secret = os.environ["DESKFLOW_SECRET_KEY"]
    reads = make_engine(os.environ["DESKFLOW_DATABASE_URL"])
    writes = writer(reads)
    with reads.connect() as conn:
        template = make_template(read_rows(conn, json.loads(os.environ["DESKFLOW_BENCH_FLOOR_ROWS"])),
                                 secret)
    signer = URLSafeSerializer(secret, salt=LINK_SALT)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret, SESSION_COOKIE_NAME=COOKIE,
                      WTF_CSRF_TIME_LIMIT=CSRF_TIME_LIMIT)
    sessions, people = Base.metadata.tables["login_sessions"], Base.metadata.tables["people"]
    signed_in = (select(sessions.c.person_id, sessions.c.created_at, sessions.c.last_seen_at)
                 .join(people, people.c.id == sessions.c.person_id)
                 .where(people.c.active.is_(True)))

    @app.get("/health")
    def health() -> Any:
        return "ok"

    @app.post(f"/items/{ITEM}")
    def order() -> Any:
        now = datetime.now(UTC)
        token = session.get("_user_id")
        if not isinstance(token, str):
            return "sign in first", 401
        digest = hashlib.sha256(token.encode()).hexdigest()
        with reads.connect() as conn:
            me = conn.execute(signed_in.where(sessions.c.id == digest)).first()
        if me is None or now - me.last_seen_at > IDLE or now - me.created_at > LIFETIME:
            return "sign in first", 401
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            return str(exc), 400
        try:
            answers = answers_of(request.form)
        except Refused as exc:
            return str(exc), 422
        fill = Fill(me.person_id, now - template.created_at, signer)
        with writes.begin() as conn:
            return write_order(conn, template, fill, answers, now)

    return app
