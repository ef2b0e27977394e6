"""Plain records passed between the domain services and a store backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trailkeep.query.filter import EventFilter

AppendStatus = Literal["created", "duplicate", "conflict"]


@dataclass(slots=True)
class EventDraft:
    """An event validated by the domain, waiting for its seq.

    ``doc`` is the stored JSON object without ``seq``; the writer adds the seq it assigns
    and writes the object as RFC 8785 JSON into the stored ``body``, whose hash is the
    event's Merkle leaf. ``jcs_by_orjson`` says orjson's sorted output is that form.
    """

    tenant_id: str
    id: str
    id_supplied: bool
    occurred_at: int
    received_at: int
    action: str
    actor_id: str | None
    actor_type: str
    severity: int
    outcome: str
    request_hash: bytes
    doc: dict[str, Any]
    jcs_by_orjson: bool = True
    targets: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class AppendResult:
    status: AppendStatus
    seq: int
    body: bytes
    id: str


@dataclass(slots=True, frozen=True)
class PageKey:
    """Keyset position: the last row of the previous page (newest-first order)."""

    occurred_at: int
    seq: int


@dataclass(slots=True, frozen=True)
class EventRow:
    occurred_at: int
    seq: int
    body: bytes


@dataclass(slots=True)
class TenantRecord:
    id: str
    display_name: str
    retention_days: int | None
    legal_hold: bool
    created_at: int
    updated_at: int
    # The tenant's privacy settings as stored (JSON object); None: the defaults.
    privacy: dict[str, Any] | None = None
    # The retention policy as stored (None: retention_days alone), and the legal hold's
    # record: reason, set_by, set_at (retention/policy.py).
    retention: dict[str, Any] | None = None
    legal_hold_info: dict[str, Any] | None = None


@dataclass(slots=True)
class ApiKeyRecord:
    id: str
    tenant_id: str | None
    role: str
    name: str
    secret_hash: bytes
    created_at: int
    revoked_at: int | None
    last_used_at: int | None


@dataclass(slots=True, frozen=True)
class CheckpointRecord:
    """A signed checkpoint of a tenant's tree (``note`` is the C2SP signed note)."""

    tenant_id: str
    size: int
    root_hash: bytes
    note: str
    signed_at: int


@dataclass(slots=True, frozen=True)
class SubjectKey:
    """One generation of a subject's data key. ``wrapped`` is the key wrapped by the
    tenant's KEK, None once erased; a subject has at most one live (unerased) key."""

    tenant_id: str
    key_id: str
    subject_id: str
    wrapped: bytes | None
    created_at: int
    erased_at: int | None = None
    erased_by: str | None = None


@dataclass(slots=True, frozen=True)
class SubjectStats:
    """The tenant's indexed events that carry the subject (``*_at``: occurred_at, µs)."""

    subject_id: str
    events: int
    first_seq: int
    last_seq: int
    first_at: int
    last_at: int


@dataclass(slots=True, frozen=True)
class TreeHead:
    """The tree of a tenant's stored events: its size and root hash."""

    size: int
    root_hash: bytes


StatsGroup = Literal["action", "severity", "outcome", "actor", "target_type"]


@dataclass(slots=True, frozen=True)
class StatsRequest:
    """Counts of events matching ``flt`` in [start, end), per bucket of ``width_us``.

    ``start`` and ``end`` are multiples of ``width_us`` (the window of whole buckets);
    ``flt``'s own occurred bounds are the same window.
    """

    flt: EventFilter
    group_by: StatsGroup
    width_us: int
    start: int
    end: int
    top: int


@dataclass(slots=True, frozen=True)
class StatsResult:
    source: Literal["rollup", "scan"]
    total: int
    top: list[tuple[Any, int]]  # (group key, count), largest first
    # Dense, one count per bucket of the request's window in order (empty ones 0): an
    # hourly month is 720 buckets times N groups, built without a dict per cell.
    totals: list[int]
    series: list[list[int]]  # per group of ``top`` (same order), per bucket


@dataclass(slots=True)
class ExportJobRecord:
    """One export job (exports/jobs.py): its request, state, progress and result."""

    tenant_id: str
    id: str
    state: str  # queued | running | done | failed | cancelled
    request: str  # JSON
    created_by: str
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    lease_owner: str | None = None
    lease_until: int | None = None
    attempts: int = 0
    written: int = 0
    total: int | None = None
    error: str | None = None
    result: str | None = None  # JSON


@dataclass(slots=True, frozen=True)
class DueRow:
    """An event a retention run looks at: its keys, what its rules read, its body."""

    seq: int
    id: str
    occurred_at: int
    action: str
    severity: int
    body: bytes


@dataclass(slots=True, frozen=True)
class PruneKey:
    """What deleting one event needs: its keys, its targets' keys, the rule that pruned it."""

    seq: int
    id: str
    occurred_at: int
    targets: tuple[tuple[str, str], ...]
    rule: str


@dataclass(slots=True, frozen=True)
class Tombstone:
    """What remains of a pruned event besides its leaf hash (retention/)."""

    seq: int
    id: str
    pruned_at: int
    rule: str
    segment: str | None


@dataclass(slots=True)
class RetentionRunRecord:
    tenant_id: str
    id: str
    state: str  # running | done | failed
    requested_by: str
    created_at: int
    finished_at: int | None = None
    lease_owner: str | None = None
    lease_until: int | None = None
    report: str | None = None  # JSON
    error: str | None = None


@dataclass(slots=True)
class SegmentRecord:
    tenant_id: str
    id: str
    run_id: str
    state: str  # archived | pruned | restored
    from_seq: int
    to_seq: int
    rows: int
    destination: str
    location: str
    manifest: str  # JSON
    created_at: int
