"""search lowercase: PostgreSQL's record_search stores its text in lower case

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-28 06:40:00.000000

The list searches it with `LIKE lower('%text%')` instead of ILIKE (engine.search_index): the
same matches, without lowering the whole text of every row the trigram index finds. The
function the triggers call is replaced and the rows are written afresh, the GIN indexes
dropped meanwhile (building one at the end is much faster than updating it row by row).
SQLite (FTS5 with the trigram tokenizer, case-insensitive already) is left as it is. The
statements are frozen here; tests/engine/test_worklist.py checks that the migrations and
engine.search_index give the same objects.
"""
from __future__ import annotations

from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

ROWS = """SELECT r.id,
       coalesce(r.number, '') || chr(10) || coalesce(r.title, '') || chr(10)
         || coalesce(r.answers::text, '')
         || coalesce(chr(10) || (SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                                 WHERE c.request_id = r.id AND NOT c.internal), ''),
       coalesce((SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                 WHERE c.request_id = r.id AND c.internal), '')
FROM requests r"""
LOWER_ROWS = """SELECT r.id,
       lower(coalesce(r.number, '') || chr(10) || coalesce(r.title, '') || chr(10)
         || coalesce(r.answers::text, '')
         || coalesce(chr(10) || (SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                                 WHERE c.request_id = r.id AND NOT c.internal), '')),
       lower(coalesce((SELECT string_agg(c.body, chr(10) ORDER BY c.id) FROM comments c
                       WHERE c.request_id = r.id AND c.internal), ''))
FROM requests r"""
REFRESH = """CREATE OR REPLACE FUNCTION record_search_refresh(rid integer) RETURNS void
LANGUAGE sql AS $$
INSERT INTO record_search (request_id, body, notes)
{rows} WHERE r.id = rid
ON CONFLICT (request_id) DO UPDATE SET body = EXCLUDED.body, notes = EXCLUDED.notes
$$"""
INDEXES = {"ix_record_search_body": "body", "ix_record_search_notes": "notes"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        rewrite(LOWER_ROWS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        rewrite(ROWS)


def rewrite(rows: str) -> None:
    """Make the triggers write `rows`, and write every record's row with them."""
    op.execute(REFRESH.format(rows=rows))
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("TRUNCATE record_search")
    op.execute(f"INSERT INTO record_search (request_id, body, notes) {rows}")
    for name, col in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON record_search USING gin ({col} gin_trgm_ops)")
    op.execute("ANALYZE record_search")
