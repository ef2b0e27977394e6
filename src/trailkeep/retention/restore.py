"""Putting an archive segment back into the hot store, with the events' original seqs.

The segment is fetched from the archive and checked against its manifest, then every
row must hash to the leaf the log holds for its seq (so only the log's own events come
back, unchanged); only seqs that are pruned (have a tombstone) are restored, so running
it twice, or over a segment some of whose events are back already, restores each event
once. Restored events are found by every query and proof again; their stats were never
uncounted. The idempotency fingerprint of the original request is not archived: a
client retrying one of these ids with its original body gets a 409, not a replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from trailkeep.integrity import proofs
from trailkeep.kit import jsonutil
from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.kit.merkle import HASH_SIZE, leaf_hash
from trailkeep.kit.timeutil import parse_us
from trailkeep.retention.runner import RetentionContext, RunFailed, segment_rows
from trailkeep.store.retention.prune_sql import targets_of

_BATCH = 2_000
_NO_FINGERPRINT = b"\0" * 16


@dataclass
class RestoreReport:
    segment_id: str
    rows: int = 0
    restored: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "rows": self.rows, "restored": self.restored}


def log_row(tenant_id: str, body: bytes) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The events row (LOG_COLUMNS order) and target rows of a stored event."""
    doc = jsonutil.loads(body)
    actor = doc.get("actor") if isinstance(doc.get("actor"), dict) else {}
    actor_id = actor.get("id") if isinstance(actor.get("id"), str) else None
    occurred = parse_us(doc["occurred_at"])
    row = (
        tenant_id,
        int(doc["seq"]),
        doc["id"],
        occurred,
        parse_us(doc["received_at"]),
        doc["action"],
        actor_id,
        actor.get("type", "user"),
        SEVERITY_RANK[doc["severity"]],
        doc.get("outcome", "success"),
        _NO_FINGERPRINT,
        body,
    )
    targets = [(tenant_id, row[1], kind, ident, occurred) for kind, ident in targets_of(body)]
    return row, targets


async def restore_segment(ctx: RetentionContext, tenant_id: str, segment_id: str) -> RestoreReport:
    seg = await ctx.store.get_segment(tenant_id, segment_id)
    if seg is None:
        raise RunFailed(f"archive segment '{segment_id}' of tenant '{tenant_id}' not found")
    report = RestoreReport(seg.id)
    stored = await segment_rows(ctx, seg)
    report.rows = len(stored)
    if stored:
        leaves = await ctx.store.read_tree(
            tenant_id, partial(proofs.leaf_hashes, begin=seg.from_seq, end=seg.to_seq)
        )
        for seq, body in stored:
            at = (seq - seg.from_seq) * HASH_SIZE
            if not 0 <= at < len(leaves) or leaf_hash(body) != leaves[at : at + HASH_SIZE]:
                raise RunFailed(
                    f"segment {seg.id}: the archived event of seq {seq} does not hash to the"
                    " log's leaf; nothing was restored"
                )
    for start in range(0, len(stored), _BATCH):
        rows, targets = [], []
        for _, body in stored[start : start + _BATCH]:
            row, its_targets = log_row(tenant_id, body)
            rows.append(row)
            targets.extend(its_targets)
        report.restored += await ctx.store.restore_events(tenant_id, rows, targets)
    await ctx.store.set_segment_state(tenant_id, seg.id, "restored")
    return report
