"""Running one export job: stream the events in seq order into the data file, write the
verification bundle, zip both, hand the archive to its destination.

Memory is bounded by one chunk of events (and, for Parquet, one row group). Every
attempt works in a fresh folder of its own under the work directory, and an archive
gets its final name only once it is complete (object_store.py), so a crash at any
point leaves no half file that looks done: the job's lease runs out, another worker
(or this one after a restart) claims it again and starts over (worker.py).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from trailkeep.exports import bundle
from trailkeep.exports.columns import view_values
from trailkeep.exports.object_store import ObjectStore
from trailkeep.exports.request import ExportPlan
from trailkeep.exports.writers import EXTENSIONS, FormatWriter, HashingSink, open_writer
from trailkeep.integrity import proofs
from trailkeep.kit.query_ast import Query
from trailkeep.kit.timeutil import format_us
from trailkeep.privacy.service import PrivacyService
from trailkeep.query.compile import event_filter
from trailkeep.query.filter import EventFilter
from trailkeep.query.parser import parse_query
from trailkeep.store.models import CheckpointRecord, ExportJobRecord
from trailkeep.store.protocol import Store

CHUNK = 5_000  # seqs read per database call
PROGRESS_EVERY_S = 1.0

Report = Callable[[dict[str, Any]], Awaitable[bool]]
"""Saves progress (and renews the lease); False when the job was cancelled or lost."""


class JobFailed(Exception):
    """The export cannot be made; the message is shown to the user as the job's error."""


class JobLost(Exception):
    """The job was cancelled, or another worker took it over: stop, keep nothing."""


@dataclass
class ExportContext:
    store: Store
    privacy: PrivacyService
    origin_of: Callable[[str], str]
    destinations: dict[str, ObjectStore]
    work_dir: Path
    wait_s: float = 30.0  # for a checkpoint covering the range, for the full-text index


async def filter_of(privacy: PrivacyService, tenant_id: str, plan: ExportPlan) -> EventFilter:
    """The plan's query as the same filter ``GET /v1/events`` would use."""
    query = parse_query(plan.q, now_us=plan.resolved_at) if plan.q else Query()
    terms = await privacy.searchable(tenant_id, query.terms)
    flt = event_filter(tenant_id, Query(tuple(terms)))
    if plan.occurred_from is not None:
        low = plan.occurred_from
        flt = replace(flt, occurred_from=max(low, flt.occurred_from or low))
    if plan.occurred_to is not None:
        high = plan.occurred_to
        flt = replace(flt, occurred_to=min(high, flt.occurred_to or high))
    return flt


async def _wait_for(what: str, ready: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await ready():
        if time.monotonic() > deadline:
            raise JobFailed(f"gave up after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def _checkpoint(ctx: ExportContext, tenant_id: str, to_seq: int) -> CheckpointRecord:
    """The latest checkpoint, once one covers the range (signed within about a second)."""
    found: list[CheckpointRecord] = []

    async def covered() -> bool:
        latest = await ctx.store.latest_checkpoint(tenant_id)
        if latest is not None and latest.size >= to_seq:
            found.append(latest)
            return True
        return False

    await _wait_for(f"a checkpoint covering seq {to_seq - 1}", covered, ctx.wait_s)
    return found[-1]


class _Progress:
    def __init__(self, report: Report) -> None:
        self._report = report
        self._last = time.monotonic()
        self.pruned = 0  # seqs of the range that retention pruned (tombstones)

    async def tick(self, written: int, scanned_to: int, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < PROGRESS_EVERY_S:
            return
        self._last = time.monotonic()
        if not await self._report({"written": written, "scanned_to_seq": scanned_to}):
            raise JobLost()


async def _check_gaps(
    ctx: ExportContext,
    tenant_id: str,
    start: int,
    end: int,
    rows: list[tuple[int, bytes]],
    progress: _Progress,
) -> None:
    """An unfiltered range with seqs that have no row: retention's tombstones are
    allowed (the bundle is then sparse, and says how many were pruned); any other gap
    fails the job."""
    have = {seq for seq, _ in rows}
    absent = [seq for seq in range(start, end) if seq not in have]
    pruned = await ctx.store.tombstones_at(tenant_id, absent)
    lost = [seq for seq in absent if seq not in pruned]
    if lost:
        raise JobFailed(f"events of seqs {lost[0]}..{lost[-1]} are not stored (and not pruned)")
    progress.pruned += len(pruned)


def _write_chunk(
    writer: FormatWriter, stored: list[bytes], docs: list[dict[str, Any]] | None
) -> None:
    """One chunk into the data file (a worker thread: it is most of the CPU work)."""
    writer.write(stored, None if docs is None else [view_values(doc) for doc in docs])


async def _stream(
    ctx: ExportContext,
    job: ExportJobRecord,
    plan: ExportPlan,
    flt: EventFilter,
    writer: FormatWriter,
    folder: Path,
    tree_size: int,
    progress: _Progress,
) -> int:
    """Write every event of the plan; returns the rows written."""
    viewer = plan.viewer()
    proofs_file = (folder / bundle.PROOFS).open("wb") if plan.filtered else None
    leaves_file = None if plan.filtered else (folder / bundle.LEAVES).open("wb")
    position, written = plan.from_seq, 0
    try:
        while position < plan.to_seq:
            start = position
            rows, position = await ctx.store.events_in_seq_range(flt, position, plan.to_seq, CHUNK)
            if not plan.filtered and len(rows) != position - start:
                await _check_gaps(ctx, job.tenant_id, start, position, rows, progress)
            if leaves_file is not None:  # every leaf of the range, pruned events' too
                leaves_file.write(
                    await ctx.store.read_tree(
                        job.tenant_id, partial(proofs.leaf_hashes, begin=start, end=position)
                    )
                )
            if rows:
                stored = [body for _, body in rows]
                docs = None
                if writer.needs_view:  # the one masking function, off the event loop
                    docs = await ctx.privacy.present_docs(viewer, job.tenant_id, stored)
                await asyncio.to_thread(_write_chunk, writer, stored, docs)
                if proofs_file is not None:
                    seqs = [seq for seq, _ in rows]
                    found = await ctx.store.read_tree(
                        job.tenant_id, partial(proofs.inclusions, seqs=seqs, size=tree_size)
                    )
                    lines = [
                        bundle.proof_line(seq, leaf, proof)
                        for seq, (leaf, proof) in zip(seqs, found, strict=True)
                    ]
                    proofs_file.write(b"\n".join(lines) + b"\n")
                written += len(rows)
            await progress.tick(written, position)
    finally:
        for handle in (proofs_file, leaves_file):
            if handle is not None:
                handle.close()
    return written


async def run_job(ctx: ExportContext, job: ExportJobRecord, report: Report) -> dict[str, Any]:
    """Make the export; returns the job's result (files, archive, rows)."""
    plan = ExportPlan.from_json(job.request)
    tenant = job.tenant_id
    destination = ctx.destinations.get(plan.destination)
    if destination is None:
        raise JobFailed(f"the destination {plan.destination!r} is not configured")
    flt = await filter_of(ctx.privacy, tenant, plan)
    checkpoint = await _checkpoint(ctx, tenant, plan.to_seq)
    if flt.text:

        async def indexed() -> bool:
            return await ctx.store.indexed_through(tenant) >= plan.to_seq

        await _wait_for(f"full text indexed to seq {plan.to_seq - 1}", indexed, ctx.wait_s)
    attempt_dir = ctx.work_dir / f"{job.id}.{job.attempts}"
    for stale in ctx.work_dir.glob(f"{job.id}.*"):
        shutil.rmtree(stale, ignore_errors=True)  # an earlier attempt's leftovers
    folder = attempt_dir / f"trailkeep-export-{job.id}"
    folder.mkdir(parents=True)
    try:
        return await _make(ctx, job, plan, flt, checkpoint, folder, destination, report)
    finally:
        shutil.rmtree(attempt_dir, ignore_errors=True)


async def _make(
    ctx: ExportContext,
    job: ExportJobRecord,
    plan: ExportPlan,
    flt: EventFilter,
    checkpoint: CheckpointRecord,
    folder: Path,
    destination: ObjectStore,
    report: Report,
) -> dict[str, Any]:
    """Stream the data straight into its zip member (hashed on the way: one pass over
    the data), then add the bundle's files and the manifest, then store the archive."""
    data_name = f"{bundle.DATA_STEM}.{EXTENSIONS[plan.format]}"
    archive = folder.parent / f"{folder.name}.zip"
    compress = plan.compression == "deflate" and plan.format != "parquet"
    progress = _Progress(report)
    with bundle.open_archive(archive) as zf:
        with bundle.open_member(zf, folder.name, data_name, compress) as member:
            sink = HashingSink(member)
            writer = open_writer(plan.format, sink.as_binary())
            try:
                rows = await _stream(ctx, job, plan, flt, writer, folder, checkpoint.size, progress)
            finally:
                await asyncio.to_thread(writer.close)
        await progress.tick(rows, plan.to_seq, force=True)
        files: dict[str, bytes | Path] = {bundle.CHECKPOINT: checkpoint.note.encode()}
        if plan.filtered:
            files[bundle.PROOFS] = folder / bundle.PROOFS
        else:
            size, begin, end = checkpoint.size, plan.from_seq, plan.to_seq
            outside = await ctx.store.read_tree(
                job.tenant_id, lambda v: proofs.outside_range(v, begin, end, size)
            )
            files[bundle.LEAVES] = folder / bundle.LEAVES
            files[bundle.RANGE_PROOF] = bundle.range_proof_json(size, begin, end, outside)
        manifest = _manifest(ctx, job, plan, checkpoint, data_name, rows)
        if progress.pruned:
            manifest["sparse"] = True
            manifest["pruned"] = progress.pruned
            manifest["statement"] += (
                f"; {progress.pruned} events of the range were pruned by retention: their"
                " leaves are in leaves.bin, their rows are not (GET /v1/events/ID: 410)"
            )
        manifest["view"] = (
            "stored"
            if plan.format == "jsonl"
            else (
                "decrypted" if await ctx.privacy.reveals(plan.viewer(), job.tenant_id) else "masked"
            )
        )
        listed = [{"name": data_name, "sha256": sink.hexdigest(), "bytes": sink.size}]
        listed += await asyncio.to_thread(
            bundle.add_files, zf, folder.name, files, plan.compression == "deflate"
        )
        manifest["files"] = listed
        zf.writestr(f"{folder.name}/{bundle.MANIFEST}", bundle.manifest_bytes(manifest))
    await asyncio.to_thread(bundle.sync_file, archive)
    name = f"{job.tenant_id}/{job.id}/{archive.name}"
    stored = await asyncio.to_thread(destination.put, archive, name)
    return {
        "rows": rows,
        "files": listed,
        "archive": {
            "destination": plan.destination,
            "location": stored.location,
            "name": archive.name,
            "bytes": stored.size,
            "sha256": stored.sha256,
        },
        "checkpoint_size": checkpoint.size,
        "view": manifest["view"],
    }


def _manifest(
    ctx: ExportContext,
    job: ExportJobRecord,
    plan: ExportPlan,
    checkpoint: CheckpointRecord,
    data_name: str,
    rows: int,
) -> dict[str, Any]:
    return {
        "format": bundle.BUNDLE_FORMAT,
        "version": bundle.BUNDLE_VERSION,
        "export_id": job.id,
        "tenant_id": job.tenant_id,
        "origin": ctx.origin_of(job.tenant_id),
        "created_at": format_us(job.created_at),
        "created_by": job.created_by,
        "data_format": plan.format,
        "data_file": data_name,
        "query": plan.q,
        "occurred_from": None if plan.occurred_from is None else format_us(plan.occurred_from),
        "occurred_to": None if plan.occurred_to is None else format_us(plan.occurred_to),
        "filtered": plan.filtered,
        "from_seq": plan.from_seq,
        "to_seq": plan.to_seq,
        "rows": rows,
        "checkpoint_size": checkpoint.size,
        "checkpoint_root": bundle.b64(checkpoint.root_hash),
        "proof": bundle.PROOFS if plan.filtered else bundle.RANGE_PROOF,
        "statement": bundle.statement(plan.filtered, plan.q, rows, plan.from_seq, plan.to_seq),
    }
