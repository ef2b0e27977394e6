"""Turning drafts into stored rows: seqs, idempotent retries, bodies (both backends).

The backend's writer looks up which client-supplied ids are already stored and hands
out seqs; this decides, event by event, what is created and what is a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.merkle import leaf_hash
from trailkeep.store.models import AppendResult, AppendStatus, EventDraft

Prior = tuple[int, bytes, bytes]  # seq, request_hash, body of an event already stored


def pruned_prior(seq: int) -> Prior:
    """An id whose event retention pruned: it stays taken. No request hash matches the
    empty one, so a retry is a conflict, reported with an empty body."""
    return (seq, b"", b"")


@dataclass(slots=True)
class StoredRows:
    results: list[AppendResult] = field(default_factory=list)
    # Column order: tenant_id, seq, id, occurred_at, received_at, action, actor_id,
    # actor_type, severity, outcome, request_hash, body.
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # Column order: tenant_id, seq, target_type, target_id, occurred_at.
    targets: list[tuple[Any, ...]] = field(default_factory=list)
    # Merkle leaf hashes of the new events, per tenant in seq order, and the first seq.
    leaves: dict[str, list[bytes]] = field(default_factory=dict)
    first_seq: dict[str, int] = field(default_factory=dict)


def stored_body(doc: dict[str, Any], jcs_by_orjson: bool) -> bytes:
    """The RFC 8785 bytes of a stored event (kit/canonical.py; orjson when it agrees)."""
    return dumps_sorted(doc) if jcs_by_orjson else canonical_json(doc)


def supplied_ids(drafts: list[EventDraft]) -> dict[str, list[str]]:
    """Client-supplied ids per tenant, each once: the ones to look up before writing."""
    wanted: dict[str, dict[str, None]] = {}
    for d in drafts:
        if d.id_supplied:
            wanted.setdefault(d.tenant_id, {})[d.id] = None
    return {tenant: list(ids) for tenant, ids in wanted.items()}


def build_rows(
    drafts: list[EventDraft],
    prior: dict[tuple[str, str], Prior],
    take_seq: Callable[[str], int],
    hash_leaves: bool = True,
) -> StoredRows:
    """Rows to insert for ``drafts``; ``prior`` holds stored events with supplied ids.

    ``hash_leaves=False`` only for bench/ingest.py's "without integrity" baseline.
    """
    out = StoredRows()
    for d in drafts:
        key = (d.tenant_id, d.id)
        hit = prior.get(key) if d.id_supplied else None
        if hit is not None:
            seq, request_hash, body = hit
            status: AppendStatus = "duplicate" if request_hash == d.request_hash else "conflict"
            out.results.append(AppendResult(status, seq, body, d.id))
            continue
        seq = take_seq(d.tenant_id)
        doc = d.doc
        doc["seq"] = seq
        body = stored_body(doc, d.jcs_by_orjson)
        if hash_leaves:
            leaves = out.leaves.get(d.tenant_id)
            if leaves is None:
                leaves = out.leaves[d.tenant_id] = []
                out.first_seq[d.tenant_id] = seq
            leaves.append(leaf_hash(body))
        out.events.append(
            (
                d.tenant_id,
                seq,
                d.id,
                d.occurred_at,
                d.received_at,
                d.action,
                d.actor_id,
                d.actor_type,
                d.severity,
                d.outcome,
                d.request_hash,
                body,
            )
        )
        for target_type, target_id in d.targets:
            out.targets.append((d.tenant_id, seq, target_type, target_id, d.occurred_at))
        if d.id_supplied:
            # A second copy of the same id later in this group is a retry of this one.
            prior[key] = (seq, d.request_hash, body)
        out.results.append(AppendResult("created", seq, body, d.id))
    return out
