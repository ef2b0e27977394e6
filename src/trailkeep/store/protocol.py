"""The Store protocol: what every backend (SQLite, PostgreSQL) provides."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from trailkeep.kit.tiles import TileId
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import (
    ApiKeyRecord,
    AppendResult,
    CheckpointRecord,
    DueRow,
    EventDraft,
    EventRow,
    ExportJobRecord,
    PageKey,
    PruneKey,
    RetentionRunRecord,
    SegmentRecord,
    StatsRequest,
    StatsResult,
    SubjectKey,
    SubjectStats,
    TenantRecord,
    Tombstone,
    TreeHead,
)

T = TypeVar("T")


class TreeView(Protocol):
    """One tenant's tree and checkpoints, read within one database call (Store.read_tree).

    The tree only grows, so whatever a later call reads extends what an earlier one saw.
    """

    def size(self) -> int: ...

    def tiles(self, ids: Iterable[TileId]) -> dict[TileId, bytes]:
        """The stored tiles among ``ids`` (missing ones are absent), current width."""
        ...

    def latest_checkpoint(self) -> CheckpointRecord | None: ...

    def checkpoint_at(self, size: int) -> CheckpointRecord | None: ...


class Store(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def is_ready(self) -> bool: ...

    async def ping(self) -> None: ...

    # events
    async def append_events(self, drafts: list[EventDraft]) -> list[AppendResult]: ...

    async def get_event(self, tenant_id: str, event_id: str) -> bytes | None: ...

    async def get_event_at(self, tenant_id: str, seq: int) -> bytes | None:
        """The stored body of the tenant's event with that seq (None: there is none)."""
        ...

    async def list_events(
        self, flt: EventFilter, after: PageKey | None, limit: int
    ) -> list[EventRow]: ...

    # data derived from the log (full text, stats rollups), kept by the indexer
    def start_indexer(self) -> None:
        """Start following the log (after start(); the server does, tools need not)."""
        ...

    async def indexed_through(self, tenant_id: str) -> int:
        """The indexer's position: every event of the tenant with a lower seq is in the
        full-text index and the rollups (later ones may not be yet)."""
        ...

    def indexer_status(self) -> dict[str, Any]:
        """This process's indexer: running, events applied, skipped, errors, last error."""
        ...

    async def index_skips(self, tenant_id: str) -> list[tuple[int, str]]:
        """Events the indexer passed over as poison: (seq, error)."""
        ...

    async def index_caught_up(self, timeout: float) -> bool:
        """Wait until the indexer has nothing left to do (tests, tools)."""
        ...

    async def stats(self, request: StatsRequest) -> StatsResult:
        """Counts over time and the top groups (store/stats/reads.py)."""
        ...

    # Merkle trees (kit/tiles.py) and signed checkpoints
    def take_grown_tenants(self) -> set[str]:
        """Tenants with events committed by this process since the last call."""
        ...

    async def tree_head(self, tenant_id: str) -> TreeHead: ...

    async def read_tree(self, tenant_id: str, fn: Callable[[TreeView], T]) -> T:
        """Run ``fn`` (in a worker thread) over the tenant's tree: one database call."""
        ...

    async def get_tiles(self, tenant_id: str, ids: list[TileId]) -> dict[TileId, bytes]:
        """The stored tiles among ``ids`` (missing ones are absent), current width."""
        ...

    async def latest_checkpoint(self, tenant_id: str) -> CheckpointRecord | None: ...

    async def list_checkpoints(
        self, tenant_id: str, below: int | None, limit: int
    ) -> list[CheckpointRecord]:
        """Newest first; only sizes below ``below`` when given."""
        ...

    async def add_checkpoint(self, record: CheckpointRecord) -> None: ...

    # tenants
    async def create_tenant(self, record: TenantRecord) -> bool: ...

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...

    async def list_tenants(self, after: str | None, limit: int) -> list[TenantRecord]: ...

    async def update_tenant(self, tenant_id: str, changes: dict[str, Any]) -> bool: ...

    async def delete_tenant(self, tenant_id: str) -> bool: ...

    # API keys
    async def create_key(self, record: ApiKeyRecord) -> None: ...

    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]: ...

    async def revoke_key(self, key_id: str, tenant_id: str | None, at: int) -> bool: ...

    async def touch_keys(self, last_used: dict[str, int]) -> None: ...

    # privacy: subjects' data keys, the tenant's index key, events per subject
    async def live_subject_keys(
        self, tenant_id: str, subject_ids: list[str]
    ) -> dict[str, SubjectKey]:
        """subject_id -> live (not erased) key, for each subject that has one."""
        ...

    async def add_subject_keys(
        self, tenant_id: str, keys: list[SubjectKey]
    ) -> dict[str, SubjectKey]:
        """In one transaction, store each candidate whose subject has no live key; then
        subject_id -> the live key of every candidate's subject. An existing key wins,
        so processes racing to create a subject's key all get the same one."""
        ...

    async def subject_keys_by_id(self, tenant_id: str, key_ids: list[str]) -> dict[str, SubjectKey]:
        """key_id -> key for the keys named, erased ones included (``wrapped`` None)."""
        ...

    async def subject_key_history(self, tenant_id: str, subject_id: str) -> list[SubjectKey]:
        """Every generation of the subject's key, oldest first."""
        ...

    async def erase_subject_keys(
        self, tenant_id: str, subject_id: str, at: int, by: str
    ) -> list[SubjectKey]:
        """Erase the subject's live key(s) (wrapped key dropped, erased_at/by set); the
        keys erased by this call in their new state ([]: none was live)."""
        ...

    async def tenant_index_key(self, tenant_id: str) -> bytes | None:
        """The tenant's index key, wrapped by its KEK."""
        ...

    async def add_tenant_index_key(self, tenant_id: str, wrapped: bytes, at: int) -> bytes:
        """Store it unless the tenant has one; returns the stored one (existing wins)."""
        ...

    async def sample_tenant_index_key(self) -> tuple[str, bytes] | None:
        """Any one (tenant_id, wrapped index key): the start-up check of the KEK."""
        ...

    async def subject_stats(self, tenant_id: str, subject_id: str) -> SubjectStats | None:
        """The subject's indexed events (up to ``indexed_through``), None: none."""
        ...

    # exports (store/exports/jobs_sql.py, store/reads/seq_range.py)
    async def events_in_seq_range(
        self, flt: EventFilter, from_seq: int, to_seq: int, limit: int
    ) -> tuple[list[tuple[int, bytes]], int]:
        """Events of ``flt`` with seq in [from_seq, to_seq), in seq order, examining at
        most ``limit`` seqs; and the seq to continue from."""
        ...

    async def max_stored_seq(self, tenant_id: str) -> int | None:
        """The highest seq of the tenant's stored events (the integrity scrub)."""
        ...

    async def create_export_job(self, job: ExportJobRecord, max_active: int) -> bool:
        """Insert ``job`` (False: the tenant has ``max_active`` queued or running)."""
        ...

    async def get_export_job(self, tenant_id: str, job_id: str) -> ExportJobRecord | None: ...

    async def list_export_jobs(
        self, tenant_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[ExportJobRecord]: ...

    async def claim_export_job(
        self, owner: str, now: int, lease_until: int, busy_tenants: list[str]
    ) -> ExportJobRecord | None:
        """Take one job to run (exactly one claimant wins it), None if none is due."""
        ...

    async def update_export_job(
        self, tenant_id: str, job_id: str, owner: str, changes: dict[str, Any]
    ) -> bool:
        """Progress, lease renewal or the outcome; False if ``owner`` lost the job."""
        ...

    async def cancel_export_job(self, tenant_id: str, job_id: str, at: int) -> str | None: ...

    # retention (store/retention/)
    async def reclaim_space(self) -> int:
        """Return space freed by pruning to the file system (bounded steps)."""
        ...

    async def retention_window(
        self, tenant_id: str, from_seq: int, upper: int, before: int
    ) -> list[DueRow]:
        """Events with ``from_seq <= seq < upper`` that occurred before ``before``."""
        ...

    async def prune_events(
        self, tenant_id: str, rows: Sequence[PruneKey], segment: str | None, at: int
    ) -> int:
        """Delete the events into tombstones (one transaction); returns rows deleted."""
        ...

    async def restore_events(
        self,
        tenant_id: str,
        events: Sequence[tuple[Any, ...]],
        targets: Sequence[tuple[Any, ...]],
    ) -> int: ...

    async def tombstone(self, tenant_id: str, event_id: str) -> Tombstone | None: ...

    async def tombstones_at(self, tenant_id: str, seqs: Sequence[int]) -> dict[int, Tombstone]: ...

    async def pruned_count(self, tenant_id: str) -> int: ...

    async def start_retention_run(self, run: RetentionRunRecord) -> RetentionRunRecord | None:
        """Start ``run`` unless another is running (returned then)."""
        ...

    async def update_retention_run(
        self, tenant_id: str, run_id: str, owner: str, changes: dict[str, Any]
    ) -> bool: ...

    async def get_retention_run(self, tenant_id: str, run_id: str) -> RetentionRunRecord | None: ...

    async def list_retention_runs(self, tenant_id: str, limit: int) -> list[RetentionRunRecord]: ...

    async def add_segment(self, segment: SegmentRecord) -> None: ...

    async def set_segment_state(self, tenant_id: str, segment_id: str, state: str) -> None: ...

    async def get_segment(self, tenant_id: str, segment_id: str) -> SegmentRecord | None: ...

    async def list_segments(
        self, tenant_id: str, after: str | None, limit: int, state: str | None = None
    ) -> list[SegmentRecord]: ...
