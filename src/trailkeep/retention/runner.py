"""One retention run of one tenant: find what its policy says is due, archive it,
check the archive, delete it into tombstones.

The order is what makes a crash at any instant safe:

1. segments that an earlier, interrupted run archived and recorded but did not finish
   deleting are finished first (their rows are read back from the archive itself);
2. the log is walked in seq windows up to the latest signed checkpoint (a pruned
   event's leaf must be in a checkpoint, so that its archive proves against it); due
   rows go into the current segment;
3. a full segment (or the last) is written, stored, read back and checked, and only
   then recorded in ``archive_segments`` (state ``archived``);
4. its rows are deleted in bounded batches, each its own short transaction (on SQLite,
   one writer call between two group commits of ingest), each leaving a tombstone;
5. the segment is marked ``pruned``.

A crash before 3 leaves an unrecorded folder in the archive and deletes nothing; a crash
in 4 leaves a recorded segment whose remaining rows step 1 of the next run deletes.
Without archive-before-delete (policy ``archive: false``) due rows are deleted as they
are found, batch by batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from trailkeep.exports.object_store import ObjectStore
from trailkeep.kit import jsonutil
from trailkeep.kit.event_vocabulary import SEVERITIES
from trailkeep.kit.ids import uuid7
from trailkeep.kit.timeutil import now_us, parse_us
from trailkeep.retention import segments
from trailkeep.retention.policy import Schedule, effective_policy, schedule
from trailkeep.store.models import DueRow, PruneKey, SegmentRecord, TenantRecord
from trailkeep.store.protocol import Store
from trailkeep.store.retention.prune_sql import targets_of, targets_of_doc

log = structlog.get_logger("trailkeep.retention")

WINDOW = 5_000  # seqs looked at per read
Step = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Called at each step (name, figures): saves progress, renews the lease, and raises
RunLost if the run was taken over."""


class RunFailed(Exception):
    """The run cannot go on; the message is the run's error. Nothing unsafe was done."""


@dataclass
class RetentionContext:
    store: Store
    origin_of: Callable[[str], str]
    archive: ObjectStore | None  # None: no archive destination configured
    archive_name: str  # "local" | "s3"
    work_dir: Path
    batch_rows: int = 500
    segment_rows: int = 250_000
    # The share of the database writer's time deletes may take (the rest is ingest's).
    writer_share: float = 0.5


@dataclass
class Report:
    dry_run: bool
    tenant_id: str
    held: bool = False
    checkpoint_size: int = 0
    scanned: int = 0
    due: int = 0
    deleted: int = 0
    archived: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    resumed_segments: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    reclaimed_pages: int = 0
    reclaim_seconds: float = 0.0  # of the run's time, spent giving space back (SQLite)
    longest_batch_ms: float = 0.0  # the longest delete transaction (how long ingest waited)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "dry_run": self.dry_run,
            "legal_hold": self.held,
            "checkpoint_size": self.checkpoint_size,
            "scanned": self.scanned,
            "due": self.due,
            "deleted": self.deleted,
            "archived": self.archived,
            "by_rule": self.by_rule,
            "by_severity": self.by_severity,
            "segments": self.segments,
            "resumed_segments": self.resumed_segments,
            "policy": self.policy,
            "reclaimed_pages": self.reclaimed_pages,
            "reclaim_seconds": self.reclaim_seconds,
            "longest_batch_ms": self.longest_batch_ms,
        }


def _prune_keys(
    rows: list[DueRow], rules: list[str], docs: list[dict[str, Any]] | None = None
) -> list[PruneKey]:
    """What deleting ``rows`` needs (``docs``: the rows already parsed, if at hand)."""
    if docs is None:
        return [
            PruneKey(r.seq, r.id, r.occurred_at, targets_of(r.body), rule)
            for r, rule in zip(rows, rules, strict=True)
        ]
    return [
        PruneKey(r.seq, r.id, r.occurred_at, targets_of_doc(doc), rule)
        for r, rule, doc in zip(rows, rules, docs, strict=True)
    ]


def _archive_rows(
    draft: segments.SegmentDraft, rows: list[DueRow], rules: list[str]
) -> list[PruneKey]:
    """Into the segment, and what deleting them later needs (a worker thread: the
    event loop keeps serving ingest meanwhile)."""
    return _prune_keys(rows, rules, segments.add_rows(draft, rows, rules))


async def _delete(
    ctx: RetentionContext,
    tenant_id: str,
    keys: list[PruneKey],
    segment: str | None,
    report: Report,
    step: Step,
) -> None:
    """Delete in bounded batches: each a short transaction of its own."""
    for start in range(0, len(keys), ctx.batch_rows):
        batch = keys[start : start + ctx.batch_rows]
        began = time.monotonic()
        report.deleted += await ctx.store.prune_events(tenant_id, batch, segment, now_us())
        took = time.monotonic() - began
        report.longest_batch_ms = max(report.longest_batch_ms, round(took * 1000, 1))
        await step("deleted", {"deleted": report.deleted, "segment": segment})
        if ctx.writer_share < 1:  # leave the writer to ingest the rest of the time
            await asyncio.sleep(took * (1 / ctx.writer_share - 1))


async def segment_rows(ctx: RetentionContext, seg: SegmentRecord) -> list[tuple[int, bytes]]:
    """(seq, stored event) of a recorded segment, read back from the archive and checked
    against its manifest (for finishing its deletes, or restoring it)."""
    if ctx.archive is None or seg.destination != ctx.archive_name:
        raise RunFailed(
            f"segment {seg.id} was archived to the {seg.destination} destination, which"
            " is not configured now; configure it to finish or restore that segment"
        )
    manifest = jsonutil.loads(seg.manifest)
    tmp = ctx.work_dir / f"read-{seg.id}"
    try:
        folder = await asyncio.to_thread(
            segments.fetch_segment, ctx.archive, seg.location, manifest, tmp
        )
        return await asyncio.to_thread(segments.archived_rows, folder)
    except segments.SegmentError as exc:
        raise RunFailed(str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _resume(
    ctx: RetentionContext, tenant: TenantRecord, sched: Schedule, report: Report, step: Step
) -> None:
    """Finish deleting the segments an interrupted run recorded but did not prune."""
    pending = await ctx.store.list_segments(tenant.id, None, 1000, state="archived")
    for seg in pending:
        stored = await segment_rows(ctx, seg)
        keys = []
        for seq, body in stored:
            doc = jsonutil.loads(body)
            rule = sched.rule_for(doc.get("action", ""), SEVERITIES.index(doc["severity"]))
            keys.append(
                PruneKey(
                    seq,
                    doc["id"],
                    parse_us(doc["occurred_at"]),
                    targets_of(body),
                    _rule_text(rule.name, rule.days) if rule else "archived",
                )
            )
        await _delete(ctx, tenant.id, keys, seg.id, report, step)
        await ctx.store.set_segment_state(tenant.id, seg.id, "pruned")
        report.resumed_segments.append(seg.id)
        await step("segment pruned", {"segment": seg.id, "rows": len(keys)})


def _rule_text(name: str, days: int) -> str:
    return f"{name}={days}d"


async def run_tenant(
    ctx: RetentionContext,
    tenant: TenantRecord,
    run_id: str,
    *,
    dry_run: bool,
    step: Step,
    now: int | None = None,
) -> Report:
    """One run for one tenant; returns what it did (or, dry, would do)."""
    report = Report(dry_run=dry_run, tenant_id=tenant.id)
    policy = effective_policy(tenant.retention, tenant.retention_days)
    report.policy = policy.model_dump()
    if tenant.legal_hold:
        report.held = True
        return report
    moment = now_us() if now is None else now
    sched = schedule(policy, moment)
    if not dry_run:
        await _resume(ctx, tenant, sched, report, step)
    if not sched.deletes_anything:
        return report
    archive = policy.archive and not dry_run
    if archive and ctx.archive is None:
        raise RunFailed("the policy archives before deleting, but no archive destination is set")
    checkpoint = await ctx.store.latest_checkpoint(tenant.id)
    if checkpoint is None:
        return report
    report.checkpoint_size = checkpoint.size
    # Only events the indexer has counted: stats keep counting pruned events, so an
    # event must be in the rollups before its row goes.
    limit = min(checkpoint.size, await ctx.store.indexed_through(tenant.id))
    before = max(r.cutoff for r in [*sched.actions, *sched.severities, sched.default] if r)
    draft: segments.SegmentDraft | None = None
    pending: list[PruneKey] = []
    # A sealed segment's rows are deleted while the next segment is read and written
    # (the writer thread and this one work at once); one segment's deletes at a time.
    deleting: asyncio.Task[None] | None = None
    position = 0
    last_step = time.monotonic()
    try:
        while position < limit:
            upper = min(limit, position + WINDOW)
            rows = await ctx.store.retention_window(tenant.id, position, upper, before)
            position = upper
            report.scanned = position
            due_rows: list[DueRow] = []
            rules: list[str] = []
            for row in rows:
                rule = sched.due(row.action, row.severity, row.occurred_at)
                if rule is None:
                    continue
                due_rows.append(row)
                rules.append(_rule_text(rule.name, rule.days))
                report.by_rule[rule.name] = report.by_rule.get(rule.name, 0) + 1
                name = SEVERITIES[row.severity]
                report.by_severity[name] = report.by_severity.get(name, 0) + 1
            report.due += len(due_rows)
            if due_rows and not dry_run:
                if not archive:
                    await _delete(ctx, tenant.id, _prune_keys(due_rows, rules), None, report, step)
                else:
                    if draft is None:
                        seg_id = uuid7()
                        draft = segments.SegmentDraft(tenant.id, seg_id, ctx.work_dir / seg_id)
                        draft.open()
                    pending.extend(await asyncio.to_thread(_archive_rows, draft, due_rows, rules))
                    if draft.rows >= ctx.segment_rows:
                        await _seal(ctx, tenant, draft, checkpoint, run_id, report, step)
                        if deleting is not None:
                            await deleting
                        deleting = asyncio.create_task(
                            _prune_segment(ctx, tenant.id, draft.segment_id, pending, report, step)
                        )
                        draft, pending = None, []
            if time.monotonic() - last_step > 1.0:
                last_step = time.monotonic()
                await step("scanning", {"scanned": position, "due": report.due})
        if draft is not None:
            await _seal(ctx, tenant, draft, checkpoint, run_id, report, step)
            if deleting is not None:
                await deleting
            deleting = None
            await _prune_segment(ctx, tenant.id, draft.segment_id, pending, report, step)
            draft = None
        if deleting is not None:
            await deleting
            deleting = None
        if report.deleted:
            began = time.monotonic()
            report.reclaimed_pages = await ctx.store.reclaim_space()
            report.reclaim_seconds = round(time.monotonic() - began, 2)
    finally:
        if deleting is not None and not deleting.done():
            # Stopped early (an error, a lost lease): the segment stays "archived" and
            # the next run finishes its deletes (_resume).
            deleting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await deleting
        if draft is not None:
            shutil.rmtree(draft.folder, ignore_errors=True)
    return report


async def _prune_segment(
    ctx: RetentionContext,
    tenant_id: str,
    segment_id: str,
    keys: list[PruneKey],
    report: Report,
    step: Step,
) -> None:
    """Delete a recorded segment's rows, then mark it pruned."""
    await _delete(ctx, tenant_id, keys, segment_id, report, step)
    await ctx.store.set_segment_state(tenant_id, segment_id, "pruned")
    await step("segment pruned", {"segment": segment_id, "rows": len(keys)})


async def _seal(
    ctx: RetentionContext,
    tenant: TenantRecord,
    draft: segments.SegmentDraft,
    checkpoint: Any,
    run_id: str,
    report: Report,
    step: Step,
) -> None:
    """Write, store, read back and record one segment (its rows are deleted next)."""
    assert ctx.archive is not None
    now = now_us()
    try:
        manifest = await segments.finish(
            ctx.store, draft, checkpoint, ctx.origin_of(tenant.id), run_id, report.policy, now
        )
        await step("segment written", {"segment": draft.segment_id, "rows": draft.rows})
        try:
            location = await asyncio.to_thread(segments.store_segment, ctx.archive, draft, manifest)
        except segments.SegmentError as exc:
            raise RunFailed(str(exc)) from None
    finally:
        shutil.rmtree(draft.folder, ignore_errors=True)
    await step("segment stored", {"segment": draft.segment_id, "location": location})
    record = SegmentRecord(
        tenant_id=tenant.id,
        id=draft.segment_id,
        run_id=run_id,
        state="archived",
        from_seq=draft.from_seq,
        to_seq=draft.to_seq,
        rows=draft.rows,
        destination=ctx.archive_name,
        location=location,
        manifest=jsonutil.dumps(manifest).decode(),
        created_at=now,
    )
    await ctx.store.add_segment(record)
    report.archived += draft.rows
    report.segments.append(draft.segment_id)
    await step("segment recorded", {"segment": draft.segment_id})
