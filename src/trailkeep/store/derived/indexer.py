"""The indexer: the follower (log/follower.py) that keeps the data derived from the log,
the full-text rows, the stats rollups and the events per subject, off the acknowledging
commit.

Per range of one tenant's log, ``prepare`` makes SQLite's full-text rows in a process
of its own (fulltext/text_pool.py: tokenizing is the one step that must be Python), and
``write``, inside the transaction that moves the indexer's position, inserts them and
counts the range into every rollup and into subject_stats in SQL (stats/range_counts.py,
privacy/subject_counts.py). No Python runs per event in the server's interpreter, so
indexing takes no interpreter time from requests.

PostgreSQL keeps its tsvector in the event row (written at commit): its indexer only
counts. Everything is computed from the stored events, so the indexer, the migrations'
backfills, the bulk loads and the recomputation check (check.py) agree.
"""

from __future__ import annotations

from trailkeep.store.connection import SqlConnection
from trailkeep.store.fulltext.index_rows import insert_sqlite_text
from trailkeep.store.fulltext.text_pool import TextPool
from trailkeep.store.fulltext.text_worker import TextRow
from trailkeep.store.log.positions import Skip
from trailkeep.store.privacy.subject_counts import count_subjects
from trailkeep.store.stats.range_counts import count_staged, stage_range

INDEXER = "index"  # the indexer's name in log_positions


def count_range(
    conn: SqlConnection, postgres: bool, tenant_id: str, from_seq: int, to_seq: int
) -> None:
    """Add the tenant's events [from_seq, to_seq) to every rollup and to the counts per
    subject (caller's transaction). The indexer and the bulk loads (which move its
    position past what they load) both count here, so neither misses subject_stats."""
    stage_range(conn, postgres, tenant_id, from_seq, to_seq)
    count_staged(conn, postgres)
    # After stage_range: on PostgreSQL it set the custom plans this range query needs.
    count_subjects(conn, postgres, tenant_id, from_seq, to_seq)


class DerivedIndexer:
    """The FollowerHandler of the full-text rows, the stats rollups and subject_stats."""

    def __init__(self, postgres: bool, texts: TextPool | None) -> None:
        self._postgres = postgres
        self._texts = texts

    async def prepare(
        self, tenant_id: str, from_seq: int, to_seq: int
    ) -> tuple[list[TextRow], list[Skip]]:
        if self._texts is None:
            return [], []
        texts, problems = await self._texts.texts(tenant_id, from_seq, to_seq)
        return texts, [Skip(seq, error) for seq, error in problems]

    def write(
        self,
        conn: SqlConnection,
        tenant_id: str,
        from_seq: int,
        to_seq: int,
        prepared: list[TextRow],
    ) -> None:
        if prepared:
            insert_sqlite_text(conn, prepared)
        count_range(conn, self._postgres, tenant_id, from_seq, to_seq)
