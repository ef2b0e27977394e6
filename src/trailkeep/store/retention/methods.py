"""The Store methods of retention, shared by both backends (a mixin of SharedSqlStore):
rows to look at, pruning into tombstones, restoring, runs and archive segments."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import (
    DueRow,
    PruneKey,
    RetentionRunRecord,
    SegmentRecord,
    Tombstone,
)
from trailkeep.store.retention import prune_sql, runs_sql

T = TypeVar("T")


class RetentionMethods(ABC):
    postgres: ClassVar[bool]

    @abstractmethod
    async def _read(self, fn: Callable[[Any], T]) -> T: ...

    @abstractmethod
    async def _write(self, fn: Callable[[Any], T]) -> T: ...

    @abstractmethod
    def _insert_restored(
        self, conn: Any, events: Sequence[tuple[Any, ...]], targets: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert restored log rows and their full-text rows (backend-specific)."""

    async def reclaim_space(self) -> int:
        """Give space freed by pruning back to the file system; returns pages freed
        (PostgreSQL: autovacuum does, nothing to do here)."""
        return 0

    async def retention_window(
        self, tenant_id: str, from_seq: int, upper: int, before: int
    ) -> list[DueRow]:
        pg = self.postgres
        return await self._read(
            lambda c: prune_sql.rows_in_window(c, pg, tenant_id, from_seq, upper, before)
        )

    async def prune_events(
        self,
        tenant_id: str,
        rows: Sequence[PruneKey],
        segment: str | None,
        at: int,
    ) -> int:
        pg = self.postgres
        return await self._write(
            lambda c: prune_sql.prune_rows(c, pg, tenant_id, rows, segment, at)
        )

    async def restore_events(
        self,
        tenant_id: str,
        events: Sequence[tuple[Any, ...]],
        targets: Sequence[tuple[Any, ...]],
    ) -> int:
        """Put pruned events back (rows in the order of LOG_COLUMNS); only seqs that
        have a tombstone are restored. Returns the rows restored."""

        def restore(conn: SqlConnection) -> int:
            seqs = [int(r[1]) for r in events]
            pruned = prune_sql.tombstones_at(conn, tenant_id, seqs)
            rows = [r for r in events if int(r[1]) in pruned]
            keep = {int(r[1]) for r in rows}
            self._insert_restored(conn, rows, [t for t in targets if int(t[1]) in keep])
            prune_sql.forget_tombstones(conn, tenant_id, sorted(keep))
            return len(rows)

        return await self._write(restore)

    async def tombstone(self, tenant_id: str, event_id: str) -> Tombstone | None:
        return await self._read(lambda c: prune_sql.tombstone_by_id(c, tenant_id, event_id))

    async def tombstones_at(self, tenant_id: str, seqs: Sequence[int]) -> dict[int, Tombstone]:
        return await self._read(lambda c: prune_sql.tombstones_at(c, tenant_id, seqs))

    async def pruned_count(self, tenant_id: str) -> int:
        return await self._read(lambda c: prune_sql.pruned_count(c, tenant_id))

    async def start_retention_run(self, run: RetentionRunRecord) -> RetentionRunRecord | None:
        return await self._write(lambda c: runs_sql.start_run(c, run))

    async def update_retention_run(
        self, tenant_id: str, run_id: str, owner: str, changes: dict[str, Any]
    ) -> bool:
        return await self._write(
            lambda c: runs_sql.update_run(c, tenant_id, run_id, owner, changes)
        )

    async def get_retention_run(self, tenant_id: str, run_id: str) -> RetentionRunRecord | None:
        return await self._read(lambda c: runs_sql.select_run(c, tenant_id, run_id))

    async def list_retention_runs(self, tenant_id: str, limit: int) -> list[RetentionRunRecord]:
        return await self._read(lambda c: runs_sql.select_runs(c, tenant_id, limit))

    async def add_segment(self, segment: SegmentRecord) -> None:
        await self._write(lambda c: runs_sql.insert_segment(c, segment))

    async def set_segment_state(self, tenant_id: str, segment_id: str, state: str) -> None:
        await self._write(lambda c: runs_sql.set_segment_state(c, tenant_id, segment_id, state))

    async def get_segment(self, tenant_id: str, segment_id: str) -> SegmentRecord | None:
        return await self._read(lambda c: runs_sql.select_segment(c, tenant_id, segment_id))

    async def list_segments(
        self, tenant_id: str, after: str | None, limit: int, state: str | None = None
    ) -> list[SegmentRecord]:
        return await self._read(
            lambda c: runs_sql.select_segments(c, tenant_id, after, limit, state)
        )
