"""Tamper evidence: each tenant's Merkle tree as tiles, and its signed checkpoints.

Builds the tree of every event already stored (store/migrations/tree_backfill.py); bodies are
rewritten in their RFC 8785 form where that differs (only bodies holding floats).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trailkeep.store.migrations.tree_backfill import backfill_trees

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merkle_tiles",
        sa.Column("tenant_id", sa.String(64, collation="C"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "level", "idx", name="pk_merkle_tiles"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tenant_id", sa.String(64, collation="C"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("signed_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "size", name="pk_checkpoints"),
    )
    backfill_trees(op.get_bind())


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("merkle_tiles")
