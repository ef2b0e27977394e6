"""The Store methods both backends share: appending through the group-commit writer,
readiness, following the log (the indexer of full text and stats, log/follower.py),
and the SQL of events by id, by page and by seq range, tenants and API keys, privacy's
keys and counts, and export jobs. A backend supplies its writer, its indexer's handler,
how a read and a write run (``_read``, ``_write``), its read dialect and its list of
tenant data tables."""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from trailkeep.errors import StoreUnavailable
from trailkeep.kit.tiles import TileId
from trailkeep.query.filter import EventFilter
from trailkeep.store.accounts import tenants_and_keys
from trailkeep.store.connection import SqlConnection
from trailkeep.store.derived.indexer import INDEXER
from trailkeep.store.exports import jobs_sql
from trailkeep.store.log import positions
from trailkeep.store.log.follower import FollowerHandler, LogFollower, Move
from trailkeep.store.log.group_commit import GroupCommitWriter, WriterUnavailable
from trailkeep.store.models import (
    ApiKeyRecord,
    AppendResult,
    CheckpointRecord,
    EventDraft,
    EventRow,
    ExportJobRecord,
    PageKey,
    StatsRequest,
    StatsResult,
    SubjectKey,
    SubjectStats,
    TenantRecord,
    TreeHead,
)
from trailkeep.store.privacy import keys_sql
from trailkeep.store.protocol import TreeView
from trailkeep.store.reads import events, pages, seq_range
from trailkeep.store.retention.methods import RetentionMethods
from trailkeep.store.stats import reads as stats_reads
from trailkeep.store.tree import tiles_sql

T = TypeVar("T")


class SharedSqlStore(RetentionMethods, ABC):
    dialect: ClassVar[pages.ReadDialect]
    tenant_data_tables: ClassVar[tuple[str, ...]]
    postgres: ClassVar[bool]
    # The group-commit writers; a tenant's events always go through the same one
    # (SQLite has exactly one: it allows one writer at a time).
    _writers: list[GroupCommitWriter]
    _indexer: LogFollower

    @abstractmethod
    async def _read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` for reading; database errors become StoreUnavailable."""

    @abstractmethod
    async def _write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` in a transaction; errors become StoreUnavailable."""

    def is_ready(self) -> bool:
        return all(writer.alive for writer in self._writers)

    def _writer_of(self, tenant_id: str) -> GroupCommitWriter:
        writers = self._writers
        if len(writers) == 1:
            return writers[0]
        return writers[zlib.crc32(tenant_id.encode()) % len(writers)]

    # -- following the log -----------------------------------------------------------
    def _follow_with(self, handler: FollowerHandler) -> None:
        """Make the indexer (call in __init__, after the writer): it wakes up after each
        commit of this process's writer; ``start_indexer`` starts it."""
        self._indexer = LogFollower(INDEXER, self, handler)
        for writer in self._writers:
            writer.add_listener(self._indexer.notify)

    def start_indexer(self) -> None:
        """Follow the log from now on (the server does; one-shot CLI commands do not)."""
        self._indexer.start()

    async def _stop_following(self) -> None:
        await self._indexer.stop()

    async def log_lag(self, follower: str, tenants: set[str] | None) -> dict[str, tuple[int, int]]:
        pg = self.postgres
        return await self._read(lambda c: positions.log_lag(c, pg, follower, tenants))

    async def advance_follower(self, follower: str, moves: list[Move]) -> set[str]:
        pg = self.postgres

        def advance(conn: SqlConnection) -> set[str]:
            return {
                m.tenant_id
                for m in moves
                if positions.advance(
                    conn, pg, follower, m.tenant_id, m.from_seq, m.to_seq, m.skips, m.write
                )
            }

        return await self._write(advance)

    async def indexed_through(self, tenant_id: str) -> int:
        return await self._read(lambda c: positions.position(c, INDEXER, tenant_id))

    async def index_skips(self, tenant_id: str) -> list[tuple[int, str]]:
        return await self._read(lambda c: positions.skipped(c, INDEXER, tenant_id))

    def indexer_status(self) -> dict[str, Any]:
        stats = self._indexer.stats
        return {
            "running": self._indexer.running,
            "events": stats.events,
            "skipped": stats.skipped,
            "errors": stats.errors,
            "last_error": stats.last_error,
        }

    async def index_caught_up(self, timeout: float) -> bool:
        return await self._indexer.caught_up(timeout)

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # -- events --------------------------------------------------------------------
    async def append_events(self, drafts: list[EventDraft]) -> list[AppendResult]:
        try:
            if not drafts:
                return []
            return await self._writer_of(drafts[0].tenant_id).append(drafts)
        except WriterUnavailable as exc:
            raise StoreUnavailable(str(exc), retry_after=1) from exc

    async def get_event(self, tenant_id: str, event_id: str) -> bytes | None:
        dialect = self.dialect
        return await self._read(lambda c: pages.get_event(c, dialect, tenant_id, event_id))

    async def get_event_at(self, tenant_id: str, seq: int) -> bytes | None:
        dialect = self.dialect
        return await self._read(lambda c: pages.get_event_at(c, dialect, tenant_id, seq))

    async def list_events(
        self, flt: EventFilter, after: PageKey | None, limit: int
    ) -> list[EventRow]:
        dialect = self.dialect
        return await self._read(lambda c: events.list_events(c, dialect, flt, after, limit))

    async def stats(self, request: StatsRequest) -> StatsResult:
        dialect = self.dialect
        return await self._read(lambda c: stats_reads.read_stats(c, dialect, request))

    # -- Merkle trees and checkpoints ------------------------------------------------
    def take_grown_tenants(self) -> set[str]:
        grown: set[str] = set()
        for writer in self._writers:
            grown |= writer.take_grown()
        return grown

    async def tree_head(self, tenant_id: str) -> TreeHead:
        def read(conn: SqlConnection) -> TreeHead:
            frontier = tiles_sql.load_frontier(conn, tenant_id)
            return TreeHead(frontier.size, frontier.root())

        return await self._read(read)

    async def read_tree(self, tenant_id: str, fn: Callable[[TreeView], T]) -> T:
        return await self._read(lambda c: fn(tiles_sql.SqlTreeView(c, tenant_id)))

    async def get_tiles(self, tenant_id: str, ids: list[TileId]) -> dict[TileId, bytes]:
        return await self._read(lambda c: tiles_sql.get_tiles(c, tenant_id, ids))

    async def latest_checkpoint(self, tenant_id: str) -> CheckpointRecord | None:
        return await self._read(lambda c: tiles_sql.latest_checkpoint(c, tenant_id))

    async def list_checkpoints(
        self, tenant_id: str, below: int | None, limit: int
    ) -> list[CheckpointRecord]:
        return await self._read(lambda c: tiles_sql.list_checkpoints(c, tenant_id, below, limit))

    async def add_checkpoint(self, record: CheckpointRecord) -> None:
        await self._write(lambda c: tiles_sql.insert_checkpoint(c, record))

    # -- tenants -------------------------------------------------------------------
    async def create_tenant(self, record: TenantRecord) -> bool:
        return await self._write(lambda c: self._insert_tenant(c, record))

    def _insert_tenant(self, conn: SqlConnection, record: TenantRecord) -> bool:
        return tenants_and_keys.insert_tenant(conn, record)

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        return await self._read(lambda c: tenants_and_keys.select_tenant(c, tenant_id))

    async def list_tenants(self, after: str | None, limit: int) -> list[TenantRecord]:
        return await self._read(lambda c: tenants_and_keys.select_tenants(c, after, limit))

    async def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> bool:
        return await self._write(lambda c: tenants_and_keys.update_tenant(c, tenant_id, changes))

    async def delete_tenant(self, tenant_id: str) -> bool:
        tables = self.tenant_data_tables
        return await self._write(lambda c: tenants_and_keys.delete_tenant(c, tenant_id, tables))

    # -- API keys ------------------------------------------------------------------
    async def create_key(self, record: ApiKeyRecord) -> None:
        await self._write(lambda c: tenants_and_keys.insert_key(c, record))

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return await self._read(lambda c: tenants_and_keys.select_key(c, key_id))

    async def list_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]:
        return await self._read(lambda c: tenants_and_keys.select_keys(c, tenant_id))

    async def revoke_key(self, key_id: str, tenant_id: str | None, at: int) -> bool:
        return await self._write(lambda c: tenants_and_keys.revoke_key(c, key_id, tenant_id, at))

    async def touch_keys(self, last_used: dict[str, int]) -> None:
        await self._write(lambda c: tenants_and_keys.touch_keys(c, last_used))

    # -- privacy: subject keys, tenant index keys, events per subject ----------------
    # Writes run in a transaction of their own: on SQLite on the writer thread (between
    # group commits), on PostgreSQL on a pooled connection.
    async def live_subject_keys(
        self, tenant_id: str, subject_ids: list[str]
    ) -> dict[str, SubjectKey]:
        if not subject_ids:
            return {}
        hint = self.dialect.hint("ux_subject_keys_live")
        return await self._read(
            lambda c: keys_sql.live_subject_keys(c, tenant_id, subject_ids, hint)
        )

    async def add_subject_keys(
        self, tenant_id: str, keys: list[SubjectKey]
    ) -> dict[str, SubjectKey]:
        if not keys:
            return {}
        hint = self.dialect.hint("ux_subject_keys_live")
        return await self._write(lambda c: keys_sql.add_subject_keys(c, tenant_id, keys, hint))

    async def subject_keys_by_id(self, tenant_id: str, key_ids: list[str]) -> dict[str, SubjectKey]:
        if not key_ids:
            return {}
        return await self._read(lambda c: keys_sql.subject_keys_by_id(c, tenant_id, key_ids))

    async def subject_key_history(self, tenant_id: str, subject_id: str) -> list[SubjectKey]:
        return await self._read(lambda c: keys_sql.subject_key_history(c, tenant_id, subject_id))

    async def erase_subject_keys(
        self, tenant_id: str, subject_id: str, at: int, by: str
    ) -> list[SubjectKey]:
        return await self._write(
            lambda c: keys_sql.erase_subject_keys(c, tenant_id, subject_id, at, by)
        )

    async def tenant_index_key(self, tenant_id: str) -> bytes | None:
        return await self._read(lambda c: keys_sql.tenant_index_key(c, tenant_id))

    async def add_tenant_index_key(self, tenant_id: str, wrapped: bytes, at: int) -> bytes:
        return await self._write(lambda c: keys_sql.add_tenant_index_key(c, tenant_id, wrapped, at))

    async def sample_tenant_index_key(self) -> tuple[str, bytes] | None:
        return await self._read(keys_sql.sample_tenant_index_key)

    async def subject_stats(self, tenant_id: str, subject_id: str) -> SubjectStats | None:
        return await self._read(lambda c: keys_sql.subject_stats(c, tenant_id, subject_id))

    # -- exports: jobs, and events in seq order --------------------------------------
    async def events_in_seq_range(
        self, flt: EventFilter, from_seq: int, to_seq: int, limit: int
    ) -> tuple[list[tuple[int, bytes]], int]:
        dialect = self.dialect
        return await self._read(
            lambda c: seq_range.events_in_seq_range(c, dialect, flt, from_seq, to_seq, limit)
        )

    async def max_stored_seq(self, tenant_id: str) -> int | None:
        def read(conn: SqlConnection) -> int | None:
            row = conn.execute(
                "SELECT MAX(seq) FROM events WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return await self._read(read)

    async def create_export_job(self, job: ExportJobRecord, max_active: int) -> bool:
        """Insert ``job`` unless its tenant already has ``max_active`` queued or running."""

        def insert(conn: SqlConnection) -> bool:
            if jobs_sql.count_active(conn, job.tenant_id) >= max_active:
                return False
            jobs_sql.insert_job(conn, job)
            return True

        return await self._write(insert)

    async def get_export_job(self, tenant_id: str, job_id: str) -> ExportJobRecord | None:
        return await self._read(lambda c: jobs_sql.select_job(c, tenant_id, job_id))

    async def list_export_jobs(
        self, tenant_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[ExportJobRecord]:
        return await self._read(lambda c: jobs_sql.select_jobs(c, tenant_id, before, limit))

    async def claim_export_job(
        self, owner: str, now: int, lease_until: int, busy_tenants: list[str]
    ) -> ExportJobRecord | None:
        pg = self.postgres
        return await self._write(
            lambda c: jobs_sql.claim_job(c, pg, owner, now, lease_until, busy_tenants)
        )

    async def update_export_job(
        self, tenant_id: str, job_id: str, owner: str, changes: dict[str, Any]
    ) -> bool:
        return await self._write(
            lambda c: jobs_sql.update_job(c, tenant_id, job_id, owner, changes)
        )

    async def cancel_export_job(self, tenant_id: str, job_id: str, at: int) -> str | None:
        return await self._write(lambda c: jobs_sql.cancel_job(c, tenant_id, job_id, at))
