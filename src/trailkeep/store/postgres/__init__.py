"""The PostgreSQL backend: events partitioned by month, one group-commit writer per
process, writers of one tenant serialized across processes by a row lock."""

from trailkeep.store.postgres.connect import PgOptions
from trailkeep.store.postgres.store import PostgresStore

__all__ = ["PgOptions", "PostgresStore"]
