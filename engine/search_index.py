"""The text index of the agents' list: number, title, answers and comments of every record.

One row per record in `record_search` holding, one per line, the number, the title, the
answers (the JSON as text) and the bodies of the comments the requester can see, and apart
from them the bodies of the internal notes, so that only those who may read a record's notes
find it by them. Triggers on `requests` and `comments` rewrite a record's row in the
transaction that changes it, whatever code writes (the request service, a bulk statement).

- SQLite: an FTS5 table with the trigram tokenizer (rowid = the request's id; columns
  `record`, `comments`, `notes`). A text of three characters or more is a trigram phrase
  query (`record_search MATCH '{record comments} : "text"'`): a substring, case-insensitively,
  served by the index; one or two characters are a LIKE on each record's row, as the list
  reads records (in the sort's order, until it has a page).
- PostgreSQL: a table (`request_id`, `body` = record and comments, `notes`) stored in lower
  case, with GIN `gin_trgm_ops` indexes (extension pg_trgm), searched with
  `LIKE lower('%text%')`, which the trigram index serves from three characters on (shorter
  texts row by row, as on SQLite). That is what ILIKE does (the database's lower() on both
  sides), without lowering the whole text of every row the index finds, again per search.

A bulk writer (the history importer) pauses the triggers on requests inside its own
transaction (`pause`: a row in `record_search_paused`, which no other transaction sees) and
indexes the records it wrote in one statement before it commits (`resume`): several times
faster than a trigger per row.

The objects are created by migrations 0014, 0018, 0028 and 0029 and, for databases made from the
models (`engine.db.create_schema`), by `create`. They live outside `Base.metadata` (an FTS5
table and its shadow tables are no model); `include_name` keeps them out of the comparison of
models and database (Alembic autogenerate, the schema tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, column, func, or_, select, table, union

from engine.models import Request

TABLE = "record_search"
#: at least this many characters, and the index serves a search
TRIGRAM = 3


def _sqlite_record(r: str) -> str:
    """The record's own text, from a row of requests (`NEW` or a table alias)."""
    return (f"coalesce({r}.number, '') || char(10) || coalesce({r}.title, '') || char(10) "
            f"|| coalesce(CAST({r}.answers AS TEXT), '')")


def _sqlite_comments(rid: str, internal: bool) -> str:
    return (f"coalesce((SELECT group_concat(c.body, char(10)) FROM comments c "
            f"WHERE c.request_id = {rid} AND {'' if internal else 'NOT '}c.internal), '')")


def _sqlite_comments_of(rid: str) -> str:
    """Rewrite a record's comments and notes; reads comments only, never requests, so that a
    migration that copies and renames requests (Alembic's batch mode) is not in the way."""
    return (f"UPDATE record_search SET comments = {_sqlite_comments(rid, False)}, "
            f"notes = {_sqlite_comments(rid, True)} WHERE rowid = {rid};")


SQLITE_TABLE = "CREATE VIRTUAL TABLE record_search USING fts5(record, comments, notes, " \
    "tokenize='trigram')"
#: a row here (only ever inside a bulk writer's own transaction: `pause`) stops the triggers
#: on requests; the writer then indexes its records in one statement (`resume`)
PAUSED = "record_search_paused"
PAUSED_TABLE = f"CREATE TABLE {PAUSED} (paused INTEGER NOT NULL)"
_UNPAUSED = f"WHEN NOT EXISTS (SELECT 1 FROM {PAUSED}) "
#: name -> statement; a migration that recreates requests or comments drops their triggers,
#: and `ensure` (run by engine/migrations/env.py after every upgrade) puts them back
SQLITE_TRIGGERS = {
    "record_search_request_insert":
        f"CREATE TRIGGER record_search_request_insert AFTER INSERT ON requests {_UNPAUSED}BEGIN "
        "INSERT INTO record_search(rowid, record, comments, notes) "
        f"VALUES (NEW.id, {_sqlite_record('NEW')}, '', ''); END",
    "record_search_request_update":
        "CREATE TRIGGER record_search_request_update AFTER UPDATE OF number, title, answers "
        f"ON requests {_UNPAUSED}BEGIN UPDATE record_search SET record = {_sqlite_record('NEW')} "
        "WHERE rowid = NEW.id; END",
    "record_search_request_delete":
        "CREATE TRIGGER record_search_request_delete AFTER DELETE ON requests BEGIN "
        "DELETE FROM record_search WHERE rowid = OLD.id; END",
    "record_search_comment_insert":
        "CREATE TRIGGER record_search_comment_insert AFTER INSERT ON comments BEGIN "
        f"{_sqlite_comments_of('NEW.request_id')} END",
    "record_search_comment_update":
        "CREATE TRIGGER record_search_comment_update AFTER UPDATE OF body, internal, request_id "
        f"ON comments BEGIN {_sqlite_comments_of('OLD.request_id')} "
        f"{_sqlite_comments_of('NEW.request_id')} END",
    "record_search_comment_delete":
        "CREATE TRIGGER record_search_comment_delete AFTER DELETE ON comments BEGIN "
        f"{_sqlite_comments_of('OLD.request_id')} END",
}
SQLITE = [SQLITE_TABLE, PAUSED_TABLE, *SQLITE_TRIGGERS.values()]
SQLITE_FILL = ("INSERT INTO record_search(rowid, record, comments, notes) "
               f"SELECT r.id, {_sqlite_record('r')}, {_sqlite_comments('r.id', False)}, "
               f"{_sqlite_comments('r.id', True)} FROM requests r")

_PG_ROWS = """SELECT r.id,
       lower(coalesce(r.number, '') || chr(10) || coalesce(r.title, '') || chr(10)
         || coalesce(r.answers::text, '')
         || coalesce(chr(10) || (SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                                 WHERE c.request_id = r.id AND NOT c.internal), '')),
       lower(coalesce((SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                       WHERE c.request_id = r.id AND c.internal), ''))
FROM requests r"""
#: how many sampled rows of `body` PostgreSQL keeps to estimate a search (default 100): with
#: 100 a word in 0.5 % of the records matches none of them, the planner guesses a few rows
#: and probes the list's index once per hit (a nested loop); with 1,000 it sees the thousands
#: and joins by hash, which takes half the time at 1,000,000 records
BODY_STATISTICS = 1000
POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE record_search (request_id INTEGER NOT NULL, body TEXT NOT NULL, "
    "notes TEXT NOT NULL, CONSTRAINT pk_record_search PRIMARY KEY (request_id), "
    "CONSTRAINT fk_record_search_request_id_requests FOREIGN KEY (request_id) "
    "REFERENCES requests (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_record_search_body ON record_search USING gin (body gin_trgm_ops)",
    "CREATE INDEX ix_record_search_notes ON record_search USING gin (notes gin_trgm_ops)",
    f"ALTER TABLE record_search ALTER COLUMN body SET STATISTICS {BODY_STATISTICS}",
    f"""CREATE FUNCTION record_search_refresh(rid integer) RETURNS void LANGUAGE sql AS $$
INSERT INTO record_search (request_id, body, notes)
{_PG_ROWS} WHERE r.id = rid
ON CONFLICT (request_id) DO UPDATE SET body = EXCLUDED.body, notes = EXCLUDED.notes
$$""",
    PAUSED_TABLE,
    """CREATE FUNCTION record_search_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM record_search_paused) THEN RETURN NULL; END IF;
  PERFORM record_search_refresh(NEW.id);
  RETURN NULL;
END $$""",
    """CREATE FUNCTION record_search_comment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM record_search_refresh(OLD.request_id); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM record_search_refresh(NEW.request_id); END IF;
  RETURN NULL;
END $$""",
    "CREATE TRIGGER record_search_request AFTER INSERT OR UPDATE OF number, title, answers "
    "ON requests FOR EACH ROW EXECUTE FUNCTION record_search_request()",
    "CREATE TRIGGER record_search_comment AFTER INSERT OR DELETE OR UPDATE OF body, internal, "
    "request_id ON comments FOR EACH ROW EXECUTE FUNCTION record_search_comment()",
]

REBUILD = {
    "sqlite": ["DELETE FROM record_search", SQLITE_FILL],
    "postgresql": ["DELETE FROM record_search",
                   f"INSERT INTO record_search (request_id, body, notes) {_PG_ROWS}"],
}


def create(conn: Connection) -> None:
    """Create the index, its triggers, and fill it from the records already there (once)."""
    there = ("SELECT count(*) FROM sqlite_master WHERE name = 'record_search'"
             if conn.dialect.name == "sqlite" else
             "SELECT count(*) FROM pg_class WHERE relname = 'record_search'")
    if conn.exec_driver_sql(there).scalar():
        return
    for statement in SQLITE if conn.dialect.name == "sqlite" else POSTGRESQL:
        conn.exec_driver_sql(statement)
    rebuild(conn)


def rebuild(conn: Connection) -> None:
    """Index every record afresh (after rows were loaded with triggers off, e.g. COPY)."""
    for statement in REBUILD[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def pause(conn: Connection) -> None:
    """Stop the triggers on requests for the rest of this transaction (others never see the
    row); a bulk writer calls `resume` with the ids it wrote before it commits."""
    conn.exec_driver_sql(f"INSERT INTO {PAUSED} (paused) VALUES (1)")


def resume(conn: Connection, ids: Sequence[int]) -> None:
    """Start the triggers again and index the records `ids` in one statement."""
    conn.exec_driver_sql(f"DELETE FROM {PAUSED}")
    if not ids:
        return
    listed = ", ".join(str(int(i)) for i in ids)  # integers only: no text reaches the SQL
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE rowid IN ({listed})")
        conn.exec_driver_sql(f"{SQLITE_FILL} WHERE r.id IN ({listed})")
    else:
        conn.exec_driver_sql(
            f"INSERT INTO {TABLE} (request_id, body, notes) {_PG_ROWS} WHERE r.id IN ({listed}) "
            "ON CONFLICT (request_id) DO UPDATE SET body = EXCLUDED.body, notes = EXCLUDED.notes")


def ensure(conn: Connection) -> None:
    """Put back the SQLite triggers a migration dropped by recreating their table, and then
    index every record afresh; nothing to do on PostgreSQL or before migration 0014."""
    if conn.dialect.name != "sqlite":
        return
    if not conn.in_transaction():  # Alembic committed its own; this is one more
        with conn.begin():
            ensure(conn)
        return
    names = set(conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') "
        "AND name LIKE 'record_search%'").scalars())
    if TABLE not in names:
        return
    missing = [sql for name, sql in SQLITE_TRIGGERS.items() if name not in names]
    for statement in missing:
        conn.exec_driver_sql(statement)
    if missing:
        rebuild(conn)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's comparison of models and database: leave the search index out."""
    return not (type_ == "table" and name is not None
                and (name == TABLE or name.startswith(f"{TABLE}_")))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _phrase(text: str) -> str:
    """An FTS5 phrase: the text in double quotes, its own double quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def matches(dialect: str, text: str, notes_readable: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition on `requests`: the record's number, title, answers or public comments, or
    its internal notes where `notes_readable` (a condition on `requests`) allows it, contain
    `text`, case-insensitively and literally (`%` and `_` are no wildcards).

    A text the index serves gives the ids it finds (a few, for a selective text); a shorter
    one is checked row by row, so that a list that stops after a page reads no more."""
    if dialect == "sqlite":
        index = table(TABLE, column("rowid"), column(TABLE), column("record"),
                      column("comments"), column("notes"))
        key = index.c.rowid
        if len(text) >= TRIGRAM:
            body: Any = index.c[TABLE].match("{record comments} : " + _phrase(text))
            notes: Any = index.c.notes.match(_phrase(text))
        else:
            body = or_(index.c.record.ilike(_like(text), escape="\\"),
                       index.c.comments.ilike(_like(text), escape="\\"))
            notes = index.c.notes.ilike(_like(text), escape="\\")
    else:
        index = table(TABLE, column("request_id"), column("body"), column("notes"))
        key = index.c.request_id
        pattern = func.lower(_like(text))  # lowered as the text stored: by the database
        body = index.c.body.like(pattern, escape="\\")
        notes = index.c.notes.like(pattern, escape="\\")
    if len(text) < TRIGRAM:
        return select(key).where(key == Request.id, or_(body, and_(notes, notes_readable))) \
            .exists()
    noted = select(key).join(Request, Request.id == key).where(notes, notes_readable)
    return Request.id.in_(union(select(key).where(body), noted))
