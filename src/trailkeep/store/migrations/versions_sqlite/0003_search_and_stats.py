"""Full-text search (FTS5 table events_fts) and the stats rollups.

Each tenant gets a number (tenants.num): the high bits of its rows' FTS rowids. Events
already stored are indexed and counted (store/migrations/search_backfill.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trailkeep.store.migrations.search_backfill import add_rollups, backfill_text, number_tenants
from trailkeep.store.stats.rollup_specs import rollups_named
from trailkeep.store.tables import sqlite_metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The rollups as this revision made them (later revisions add more).
ROLLUPS = rollups_named(
    "stats_hourly", "stats_daily", "stats_actor_daily", "stats_target_hourly", "stats_target_daily"
)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("num", sa.Integer, nullable=True))
    op.create_index("ux_tenants_num", "tenants", ["num"], unique=True)
    number_tenants(op.get_bind())
    # Tokens come pre-made (kit/fulltext.py); "ascii" splits them on spaces only.
    op.execute(
        "CREATE VIRTUAL TABLE events_fts USING fts5(terms, tokenize = 'ascii', detail = full)"
    )
    add_rollups(op.get_bind(), sqlite_metadata, ROLLUPS)
    backfill_text(op.get_bind(), postgres=False)


def downgrade() -> None:
    for spec in ROLLUPS:
        op.drop_table(spec.table)
    op.execute("DROP TABLE events_fts")
    op.drop_index("ux_tenants_num", "tenants")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("num")
