"""search statistics: PostgreSQL samples 1,000 values of record_search.body, not 100

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-28 11:45:00.000000

With the default 100, a word found in 0.5 % of the records matches none of the sampled
values: the planner guesses a handful of hits and probes the list's index once per hit. With
1,000 it estimates the thousands there are and joins them by hash (engine.search_index,
BODY_STATISTICS). The statistics are gathered again at once. SQLite is left as it is.
"""
from __future__ import annotations

from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE record_search ALTER COLUMN body SET STATISTICS 1000")
        op.execute("ANALYZE record_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE record_search ALTER COLUMN body SET STATISTICS -1")
        op.execute("ANALYZE record_search")
