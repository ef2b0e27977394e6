"""Archive segments: the Parquet file of pruned events with the bundle that proves it.

A segment is one folder ``<tenant_id>/<segment_id>/`` in the archive destination (a
local folder or S3, the exports' object stores), holding the export bundle's files
(exports/bundle.py): ``events.parquet`` (the events the run pruned from seqs
``from_seq..to_seq-1``, in seq order, each row carrying its stored event), and beside
it ``leaves.bin`` (every leaf hash of that seq range, pruned or kept), ``range-proof.json``
and ``checkpoint.txt``, so that the leaves reproduce the signed root and every archived
row must hash to its seq's leaf: ``trailkeep verify`` checks it offline. Gaps are
allowed (``"sparse": true``): the events of the range the policy kept are still in
the hot store, and each of them has its leaf in leaves.bin too.

A segment is written locally, stored file by file, then every stored file is read back
from the destination and its SHA-256 compared with the manifest's: only then is the
segment recorded, and only a recorded segment's rows are ever deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trailkeep.exports import bundle
from trailkeep.exports.columns import view_values
from trailkeep.exports.object_store import DestinationError, ObjectStore
from trailkeep.exports.writers import HashingSink, ParquetWriter
from trailkeep.integrity import proofs
from trailkeep.kit.hashing import file_sha256
from trailkeep.kit.timeutil import format_us
from trailkeep.store.models import CheckpointRecord, DueRow
from trailkeep.store.protocol import Store

DATA_FILE = f"{bundle.DATA_STEM}.parquet"
ARCHIVE_KIND = "retention-archive"
_READ = 1 << 20


class SegmentError(Exception):
    """A segment could not be stored or did not read back as written: nothing of it
    is deleted."""


@dataclass
class SegmentDraft:
    """One segment being written in a local folder."""

    tenant_id: str
    segment_id: str
    folder: Path
    from_seq: int = -1
    to_seq: int = -1
    rows: int = 0
    _handle: BinaryIO | None = None
    _sink: HashingSink | None = None
    _writer: ParquetWriter | None = None
    by_rule: dict[str, int] = field(default_factory=dict)

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._handle = (self.folder / DATA_FILE).open("wb")
        self._sink = HashingSink(self._handle)
        self._writer = ParquetWriter(self._sink.as_binary())

    def write(self, rows: list[DueRow], docs: list[dict[str, Any]]) -> None:
        """Append rows (seq order; run in a worker thread: Arrow does the work)."""
        assert self._writer is not None
        self._writer.write([r.body for r in rows], [view_values(d) for d in docs])
        if self.from_seq < 0:
            self.from_seq = rows[0].seq
        self.to_seq = rows[-1].seq + 1
        self.rows += len(rows)

    def close(self) -> tuple[str, int]:
        """Finish the data file; its SHA-256 and size."""
        assert self._writer is not None and self._sink is not None and self._handle
        self._writer.close()
        self._handle.flush()
        self._handle.close()
        return self._sink.hexdigest(), self._sink.size


def add_rows(draft: SegmentDraft, rows: list[DueRow], rules: list[str]) -> list[dict[str, Any]]:
    """Append rows to the segment (a worker thread: parsing and Arrow do the work) and
    return them parsed, for their targets' keys. The readable columns show the stored
    form: sealed personal fields stay sealed (an archive never holds them decrypted,
    and erasing a subject later makes its archived values unreadable too)."""
    docs = [orjson.loads(r.body) for r in rows]
    draft.write(rows, docs)
    for rule in rules:
        draft.by_rule[rule] = draft.by_rule.get(rule, 0) + 1
    return docs


async def finish(
    store: Store,
    draft: SegmentDraft,
    checkpoint: CheckpointRecord,
    origin: str,
    run_id: str,
    policy: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    """Close the data file, write the bundle's other files; returns the manifest."""
    data_sha, data_size = await asyncio.to_thread(draft.close)
    begin, end, size = draft.from_seq, draft.to_seq, checkpoint.size
    leaves = await store.read_tree(
        draft.tenant_id, partial(proofs.leaf_hashes, begin=begin, end=end)
    )
    outside = await store.read_tree(
        draft.tenant_id, lambda v: proofs.outside_range(v, begin, end, size)
    )
    files: dict[str, bytes] = {
        bundle.CHECKPOINT: checkpoint.note.encode(),
        bundle.LEAVES: leaves,
        bundle.RANGE_PROOF: bundle.range_proof_json(size, begin, end, outside),
    }
    listed = [{"name": DATA_FILE, "sha256": data_sha, "bytes": data_size}]
    for name, content in files.items():
        (draft.folder / name).write_bytes(content)
        listed.append(
            {"name": name, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
        )
    manifest = {
        "format": bundle.BUNDLE_FORMAT,
        "version": bundle.BUNDLE_VERSION,
        "kind": ARCHIVE_KIND,
        "segment_id": draft.segment_id,
        "run_id": run_id,
        "tenant_id": draft.tenant_id,
        "origin": origin,
        "created_at": format_us(now),
        "data_format": "parquet",
        "data_file": DATA_FILE,
        "query": "",
        "filtered": False,
        "sparse": True,
        "from_seq": begin,
        "to_seq": end,
        "rows": draft.rows,
        "by_rule": draft.by_rule,
        "policy": policy,
        "checkpoint_size": size,
        "checkpoint_root": bundle.b64(checkpoint.root_hash),
        "proof": bundle.RANGE_PROOF,
        "view": "stored",
        "statement": (
            f"the {draft.rows} events of seqs {begin}..{end - 1} that retention pruned; each"
            " hashes to its leaf in leaves.bin, and leaves.bin with range-proof.json"
            " reproduces the checkpoint's root"
        ),
        "files": listed,
    }
    (draft.folder / bundle.MANIFEST).write_bytes(bundle.manifest_bytes(manifest))
    return manifest


def _read_back(destination: ObjectStore, location: str) -> tuple[str, int]:
    handle = destination.open(location)
    if handle is None:
        raise SegmentError(f"{location} cannot be read back from the archive")
    digest, size = hashlib.sha256(), 0
    with handle:
        while chunk := handle.read(_READ):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_segment(destination: ObjectStore, draft: SegmentDraft, manifest: dict[str, Any]) -> str:
    """Store the segment's files, then read each back and check it (worker thread).
    Returns the segment's location (its folder's prefix)."""
    prefix = f"{draft.tenant_id}/{draft.segment_id}"
    expected = {entry["name"]: entry for entry in manifest["files"]}
    try:
        stored = {
            name: destination.put(draft.folder / name, f"{prefix}/{name}").location
            for name in [*expected, bundle.MANIFEST]
        }
        for name, entry in expected.items():
            sha, size = _read_back(destination, stored[name])
            if (sha, size) != (entry["sha256"], entry["bytes"]):
                raise SegmentError(
                    f"{prefix}/{name} read back from the archive differs from what was"
                    " written (SHA-256 mismatch); nothing was deleted"
                )
    except DestinationError as exc:
        raise SegmentError(f"the archive destination failed: {exc}; nothing was deleted") from None
    return prefix


def fetch_segment(
    destination: ObjectStore, location: str, manifest: dict[str, Any], into: Path
) -> Path:
    """Download a stored segment into ``into`` and check every file against its
    manifest (worker thread); returns the local folder."""
    folder = into / location.rsplit("/", 1)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for entry in [*manifest["files"], {"name": bundle.MANIFEST}]:
            handle = destination.open(destination.location_of(f"{location}/{entry['name']}"))
            if handle is None:
                raise SegmentError(f"{location}/{entry['name']} is missing from the archive")
            with handle, (folder / entry["name"]).open("wb") as out:
                shutil.copyfileobj(handle, out, _READ)
    except DestinationError as exc:
        raise SegmentError(f"the archive destination failed: {exc}") from None
    for entry in manifest["files"]:
        if file_sha256(folder / entry["name"]) != (entry["sha256"], entry["bytes"]):
            raise SegmentError(f"{location}/{entry['name']} changed since it was archived")
    return folder


def archived_rows(folder: Path) -> list[tuple[int, bytes]]:
    """(seq, stored event) of every row of a segment's data file, in file order."""
    import pyarrow.parquet as pq

    table = pq.read_table(folder / DATA_FILE, columns=["seq", "stored"])
    return [
        (int(s), bytes(b))
        for s, b in zip(
            table.column("seq").to_pylist(), table.column("stored").to_pylist(), strict=True
        )
    ]
