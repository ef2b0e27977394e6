"""Migration body shared by both backends: the followers' positions and skips.

Before this revision the full-text rows and the rollups were written with the events,
so every stored event is already indexed: the indexer's position of each tenant starts
at its log head, and the service starts with nothing to catch up.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData, text

from trailkeep.kit.timeutil import now_us
from trailkeep.store.derived.indexer import INDEXER

TABLES = ("log_positions", "log_skips")


def upgrade(metadata: MetaData, postgres: bool) -> None:
    bind = op.get_bind()
    for name in TABLES:
        metadata.tables[name].create(bind)
    heads = (
        "SELECT tenant_id, next_seq FROM tenant_seqs WHERE next_seq > 0"
        if postgres
        else "SELECT tenant_id, MAX(seq) + 1 FROM events GROUP BY tenant_id"
    )
    bind.execute(
        text(
            "INSERT INTO log_positions (tenant_id, next_seq, follower, updated_at)"
            f" SELECT heads.*, :follower, :at FROM ({heads}) AS heads"
        ),
        {"follower": INDEXER, "at": now_us()},
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
