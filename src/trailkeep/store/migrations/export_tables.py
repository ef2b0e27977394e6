"""Migration body shared by both backends: the export jobs table (``export_jobs``)."""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData

TABLE = "export_jobs"


def upgrade(metadata: MetaData) -> None:
    metadata.tables[TABLE].create(op.get_bind())


def downgrade() -> None:
    op.drop_table(TABLE)
