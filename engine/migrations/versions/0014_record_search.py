"""a text search index for the agents' list

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 13:00:00.000000

Indexes for the list's default order unfiltered, and its views "assigned to me, open" and
"breached, open".
`record_search`, one row per record (number, title, answers and public comments; internal
notes apart), kept by triggers on requests and comments: on SQLite an FTS5 table with the
trigram tokenizer, on PostgreSQL a table with pg_trgm GIN indexes; filled for the records
already there. The statements are frozen here; engine/search_index.py holds the current ones
for databases made from the models, and tests/engine/test_worklist.py checks that both give
the same objects.
"""
from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


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
SQLITE_TRIGGERS = {
    "record_search_request_insert":
        "CREATE TRIGGER record_search_request_insert AFTER INSERT ON requests BEGIN "
        "INSERT INTO record_search(rowid, record, comments, notes) "
        f"VALUES (NEW.id, {_sqlite_record('NEW')}, '', ''); END",
    "record_search_request_update":
        "CREATE TRIGGER record_search_request_update AFTER UPDATE OF number, title, answers "
        f"ON requests BEGIN UPDATE record_search SET record = {_sqlite_record('NEW')} "
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
SQLITE = [SQLITE_TABLE, *SQLITE_TRIGGERS.values()]
SQLITE_FILL = ("INSERT INTO record_search(rowid, record, comments, notes) "
               f"SELECT r.id, {_sqlite_record('r')}, {_sqlite_comments('r.id', False)}, "
               f"{_sqlite_comments('r.id', True)} FROM requests r")

POSTGRESQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE record_search (request_id INTEGER NOT NULL, body TEXT NOT NULL, "
    "notes TEXT NOT NULL, CONSTRAINT pk_record_search PRIMARY KEY (request_id), "
    "CONSTRAINT fk_record_search_request_id_requests FOREIGN KEY (request_id) "
    "REFERENCES requests (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_record_search_body ON record_search USING gin (body gin_trgm_ops)",
    "CREATE INDEX ix_record_search_notes ON record_search USING gin (notes gin_trgm_ops)",
    """CREATE FUNCTION record_search_refresh(rid integer) RETURNS void LANGUAGE sql AS $$
INSERT INTO record_search (request_id, body, notes)
SELECT r.id,
       coalesce(r.number, '') || chr(10) || coalesce(r.title, '') || chr(10)
         || coalesce(r.answers::text, '')
         || coalesce(chr(10) || (SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                                 WHERE c.request_id = r.id AND NOT c.internal), ''),
       coalesce((SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                 WHERE c.request_id = r.id AND c.internal), '')
FROM requests r WHERE r.id = rid
ON CONFLICT (request_id) DO UPDATE SET body = EXCLUDED.body, notes = EXCLUDED.notes
$$""",
    """CREATE FUNCTION record_search_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_updated', ['updated_at', 'id'], unique=False)
        batch_op.create_index('ix_requests_assignee_status_updated',
                              ['assignee_id', 'status', 'updated_at'], unique=False)
        batch_op.create_index('ix_requests_sla_status_updated',
                              ['sla_state', 'status', 'updated_at'], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for statement in (*SQLITE, SQLITE_FILL):
            op.execute(statement)
        return
    for statement in POSTGRESQL:
        op.execute(statement)
    op.execute("SELECT count(record_search_refresh(id)) FROM requests")


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_sla_status_updated')
        batch_op.drop_index('ix_requests_assignee_status_updated')
        batch_op.drop_index('ix_requests_updated')
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS record_search")
        return
    op.execute("DROP TRIGGER IF EXISTS record_search_comment ON comments")
    op.execute("DROP TRIGGER IF EXISTS record_search_request ON requests")
    op.execute("DROP FUNCTION IF EXISTS record_search_comment()")
    op.execute("DROP FUNCTION IF EXISTS record_search_request()")
    op.execute("DROP FUNCTION IF EXISTS record_search_refresh(integer)")
    op.execute("DROP TABLE IF EXISTS record_search")
