"""``trailkeep verify EXPORT`` for an export bundle (a folder, or its zip archive):
every file against the manifest, the checkpoint's signature, then every row.

Unfiltered range: ``leaves.bin`` with ``range-proof.json`` must reproduce the signed
root (so they are the log's leaves); each row must hash to the leaf of its seq, and
every seq of the range appear exactly once, in order. Filtered: each row must match
its line of ``proofs.jsonl`` and that inclusion proof must verify. CSV and Parquet rows
carry the stored event (column ``stored``); their other columns must show it: equal,
or (personal fields) decrypted or masked from a sealed value, which the proof cannot
cover and the report counts. Problems name the file, the row and the seq.
"""

from __future__ import annotations

import base64
import csv
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pyarrow.lib import ArrowException

from trailkeep.exports import bundle
from trailkeep.exports.columns import COLUMNS, NAMES, text_cells, view_values
from trailkeep.exports.writers import unescape_cell
from trailkeep.integrity.note import Verifier
from trailkeep.integrity.verify import leaf_items
from trailkeep.integrity.verify_inputs import VerifyError, open_checkpoint_bytes
from trailkeep.kit import merkle
from trailkeep.kit.hashing import file_sha256
from trailkeep.kit.merkle_range import RangeFolder, root_from_range
from trailkeep.privacy.masking import mask_value

MAX_LISTED = 20
_BATCH = 10_000
# One data row: (row number, stored event bytes, the other columns or None for JSONL).
_Row = tuple[int, bytes, list[Any] | None]


@dataclass
class BundleReport:
    folder: str
    tenant_id: str = ""
    data_file: str = ""
    rows: int = 0
    expected_rows: int = 0
    filtered: bool = False
    sparse: bool = False  # a retention archive segment: only the pruned seqs have rows
    root_ok: bool = False
    sealed_shown: int = 0  # decrypted or masked values: shown, not covered by the proof
    problems: list[str] = field(default_factory=list)
    problem_total: int = 0

    def problem(self, text: str) -> None:
        self.problem_total += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return self.root_ok and not self.problem_total

    def summary(self) -> str:
        what = (
            "archive segment" if self.sparse else ("filtered export" if self.filtered else "export")
        )
        if self.ok:
            return f"OK: {what} of {self.rows:,} events of tenant {self.tenant_id} verified"
        return f"FAILED: {what} {self.folder}: {self.problem_total} problem(s)"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": "bundle",
            "folder": self.folder,
            "tenant_id": self.tenant_id,
            "data_file": self.data_file,
            "rows": self.rows,
            "expected_rows": self.expected_rows,
            "filtered": self.filtered,
            "sparse": self.sparse,
            "root_matches": self.root_ok,
            "sealed_values_shown": self.sealed_shown,
            "problems": self.problems,
            "problem_total": self.problem_total,
        }


def is_bundle(path: Path) -> bool:
    """An export bundle (folder or zip), or a folder of them (an archive's root)."""
    return bool(bundle_folders(path)) or (path.is_file() and zipfile.is_zipfile(path))


def bundle_folders(path: Path) -> list[Path]:
    """The bundle folders at ``path``: itself, or those up to two levels below it (an
    archive root holds ``<tenant>/<segment>/``), in name order."""
    if not path.is_dir():
        return []
    if (path / bundle.MANIFEST).is_file():
        return [path]
    found = [*path.glob(f"*/{bundle.MANIFEST}"), *path.glob(f"*/*/{bundle.MANIFEST}")]
    return sorted(m.parent for m in found if not m.parent.name.startswith("."))


def verify_bundle(path: Path, verifier: Verifier) -> BundleReport:
    if path.is_dir():
        return _verify_folder(path, verifier)
    with tempfile.TemporaryDirectory(prefix="trailkeep-verify-") as tmp:
        return _verify_folder(_unpack(path, Path(tmp)), verifier)


def _unpack(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) != 1 or any(".." in n.split("/") or n.startswith("/") for n in names):
            raise VerifyError(f"{archive} is not an export archive (one folder, plain names)")
        zf.extractall(into)
    return into / tops.pop()


def _verify_folder(folder: Path, verifier: Verifier) -> BundleReport:
    report = BundleReport(str(folder))
    try:
        manifest = orjson.loads((folder / bundle.MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise VerifyError(f"{folder}: no readable {bundle.MANIFEST}: {exc}") from None
    if manifest.get("format") != bundle.BUNDLE_FORMAT or manifest.get("version") != 1:
        raise VerifyError(f"{folder}: not a version 1 Trailkeep export bundle")
    report.tenant_id = manifest["tenant_id"]
    report.data_file = manifest["data_file"]
    report.expected_rows = manifest["rows"]
    report.filtered = manifest["filtered"]
    report.sparse = bool(manifest.get("sparse"))
    _check_files(folder, manifest, report)
    checkpoint = open_checkpoint_bytes((folder / bundle.CHECKPOINT).read_bytes(), verifier)
    if checkpoint.origin != manifest["origin"] or checkpoint.size != manifest["checkpoint_size"]:
        report.problem("checkpoint.txt is not the checkpoint the manifest names")
    rows = _rows(folder / report.data_file, manifest["data_format"], report)
    try:
        if report.filtered:
            _check_filtered(folder, manifest, checkpoint.size, checkpoint.root_hash, rows, report)
        else:
            _check_range(folder, manifest, checkpoint.size, checkpoint.root_hash, rows, report)
    except (OSError, ValueError, ArrowException) as exc:  # a data file changed out of shape
        report.problem(f"{report.data_file}: cannot be read ({exc}): changed or damaged")
    if report.rows != report.expected_rows:
        report.problem(
            f"{report.data_file}: {report.rows} rows, the manifest says {report.expected_rows}"
        )
    return report


def _check_files(folder: Path, manifest: dict[str, Any], report: BundleReport) -> None:
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if not path.is_file():
            report.problem(f"{entry['name']}: missing")
            continue
        sha, size = file_sha256(path)
        if sha != entry["sha256"] or size != entry["bytes"]:
            report.problem(f"{entry['name']}: changed since the export (SHA-256 differs)")


def _rows(path: Path, fmt: str, report: BundleReport) -> Iterator[list[_Row]]:
    if fmt == "jsonl":
        return _jsonl_rows(path)
    if fmt == "csv":
        return _csv_rows(path, report)
    return _parquet_rows(path)


def _jsonl_rows(path: Path) -> Iterator[list[_Row]]:
    with path.open("rb") as handle:
        batch: list[_Row] = []
        for number, line in enumerate(handle, 1):
            batch.append((number, line.rstrip(b"\n"), None))
            if len(batch) == _BATCH:
                yield batch
                batch = []
        yield batch


def _csv_rows(path: Path, report: BundleReport) -> Iterator[list[_Row]]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, dialect="excel")
        header = next(reader, None)
        if header != list(NAMES):
            report.problem(f"{path.name}: the header is not the export's columns")
            return
        batch: list[_Row] = []
        for number, cells in enumerate(reader, 2):  # line numbers: the header is line 1
            if len(cells) != len(NAMES):
                report.problem(f"{path.name} row {number}: {len(cells)} cells, not {len(NAMES)}")
                continue
            batch.append((number, cells[-1].encode(), [unescape_cell(c) for c in cells[:-1]]))
            if len(batch) == _BATCH:
                yield batch
                batch = []
        yield batch


def _parquet_rows(path: Path) -> Iterator[list[_Row]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    number = 0
    kinds = [c.kind for c in COLUMNS]
    for record_batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH):
        columns = []
        for i in range(record_batch.num_columns):
            column = record_batch.column(i)
            if i < len(kinds) and kinds[i] == "time":  # as the event holds it: RFC 3339
                column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
            columns.append(column.to_pylist())
        batch: list[_Row] = []
        for values in zip(*columns, strict=True):
            number += 1
            batch.append((number, bytes(values[-1]), list(values[:-1])))
        yield batch


def _leaves_of(report: BundleReport, items: list[Any], batch: list[_Row]) -> Iterator[Any]:
    """(row, seq, leaf, doc) of each readable row of ``batch``; problems for the rest."""
    for item, (number, stored, cells) in zip(items, batch, strict=True):
        report.rows += 1
        if not isinstance(item, tuple):
            report.problem(f"{report.data_file} row {number}: not an event of the tenant")
            continue
        _, seq, leaf = item
        if cells is not None:
            _check_view(report, number, seq, stored, cells)
        yield number, seq, leaf


def _check_range(
    folder: Path,
    manifest: dict[str, Any],
    size: int,
    root: bytes,
    rows: Iterator[list[_Row]],
    report: BundleReport,
) -> None:
    begin, end = manifest["from_seq"], manifest["to_seq"]
    leaves = (folder / bundle.LEAVES).read_bytes()
    proof = orjson.loads((folder / bundle.RANGE_PROOF).read_bytes())
    if len(leaves) != (end - begin) * merkle.HASH_SIZE or proof["tree_size"] != size:
        report.problem("leaves.bin or range-proof.json does not fit the exported range")
        return
    folder_hashes = RangeFolder(begin, end, size)
    for i in range(end - begin):
        folder_hashes.feed(leaves[i * 32 : i * 32 + 32])
    outside = [base64.b64decode(node["hash"]) for node in proof["outside"]]
    try:
        report.root_ok = root_from_range(begin, end, size, folder_hashes.hashes, outside) == root
    except merkle.ProofError as exc:
        report.problem(f"range-proof.json: {exc}")
    if not report.root_ok:
        report.problem("leaves.bin and range-proof.json do not reproduce the signed root")
    seen = bytearray(end - begin)
    span = end - begin
    last = begin - 1
    for batch in rows:
        items = leaf_items([r[1] for r in batch], 0, report.tenant_id)
        report.rows += len(batch)
        for item, (number, stored, cells) in zip(items, batch, strict=True):
            if type(item) is not tuple:
                report.problem(f"{report.data_file} row {number}: not an event of the tenant")
                continue
            _, seq, leaf = item
            if cells is not None:
                _check_view(report, number, seq, stored, cells)
            i = seq - begin
            # The common case: in range, first time, in order, the log's leaf.
            if (
                0 <= i < span
                and not seen[i]
                and seq > last
                and leaves[32 * i : 32 * i + 32] == leaf
            ):
                seen[i] = 1
                last = seq
                continue
            where = f"{report.data_file} row {number} (seq {seq})"
            if not 0 <= i < span:
                report.problem(f"{where}: outside the exported range {begin}..{end - 1}: added")
                continue
            if seen[i]:
                report.problem(f"{where}: a second time")
                continue
            seen[i] = 1
            if seq < last:
                report.problem(f"{where}: out of order, after seq {last}")
            last = max(last, seq)
            if leaf != leaves[32 * i : 32 * i + 32]:
                report.problem(f"{where}: differs from the event the log holds: changed")
    missing = [begin + i for i, flag in enumerate(seen) if not flag]
    expected_gaps = manifest.get("pruned")  # an export over pruned events says how many
    if report.sparse and expected_gaps is not None and len(missing) != expected_gaps:
        report.problem(
            f"{len(missing)} seq(s) of the range have no row, the manifest says"
            f" {expected_gaps} were pruned: removed?"
        )
    if missing and not report.sparse:  # an archive segment holds only the pruned seqs
        listed = ", ".join(str(s) for s in missing[:10])
        report.problem(f"{len(missing)} seq(s) of the range missing (removed?): {listed}")


def _check_filtered(
    folder: Path,
    manifest: dict[str, Any],
    size: int,
    root: bytes,
    rows: Iterator[list[_Row]],
    report: BundleReport,
) -> None:
    report.root_ok = True  # each row is checked against the signed root by its proof
    begin, end = manifest["from_seq"], manifest["to_seq"]
    with (folder / bundle.PROOFS).open("rb") as handle:
        proofs = (orjson.loads(line) for line in handle if line.strip())
        pending = next(proofs, None)
        last = -1
        for batch in rows:
            items = leaf_items([r[1] for r in batch], 0, report.tenant_id)
            for number, seq, leaf in _leaves_of(report, items, batch):
                where = f"{report.data_file} row {number} (seq {seq})"
                while pending is not None and pending["seq"] < seq:
                    report.problem(f"seq {pending['seq']} was exported but has no row: removed")
                    pending = next(proofs, None)
                if pending is None or pending["seq"] != seq or seq <= last:
                    report.problem(f"{where}: not one of the exported events: added")
                    continue
                last = seq
                hashes = [base64.b64decode(h) for h in pending["proof"]]
                pending = next(proofs, None)
                in_range = begin <= seq < end
                if not in_range or not _included(leaf, seq, size, hashes, root):
                    report.problem(f"{where}: not in the log as it stands: changed")
        while pending is not None:
            report.problem(f"seq {pending['seq']} was exported but has no row: removed")
            pending = next(proofs, None)


# A sealed envelope as view_values writes it: JSON with sorted keys, bi first, tk_enc last.
_SEALED_TEXT, _SEALED_END = '{"bi":', '"tk_enc":1}'


def _check_view(
    report: BundleReport, number: int, seq: int, stored: bytes, cells: list[Any]
) -> None:
    """The row's columns must show its stored event (CSV: as text; Parquet: typed)."""
    expected = view_values(orjson.loads(stored))
    as_text = isinstance(cells[0], str)
    want = text_cells(expected) if as_text else _parquet_form(expected)
    if want == cells:
        return  # every column as stored: the common case for all but personal fields
    for i in [i for i, pair in enumerate(zip(cells, want, strict=True)) if pair[0] != pair[1]]:
        column, got, raw = COLUMNS[i], cells[i], expected[i]
        if isinstance(raw, str) and raw.startswith(_SEALED_TEXT) and raw.endswith(_SEALED_END):
            report.sealed_shown += 1  # decrypted, masked or "[erased]": not provable
            continue
        if isinstance(got, str) and isinstance(raw, str) and got == mask_value(column.path, raw):
            report.sealed_shown += 1  # a personal field masked for this role
            continue
        report.problem(
            f"{report.data_file} row {number} (seq {seq}): column {column.name} does not"
            " show the stored event: changed"
        )


_TARGETS = next(i for i, c in enumerate(COLUMNS) if c.kind == "targets")


def _parquet_form(values: list[Any]) -> list[Any]:
    """View values as a Parquet row reads back: every target with all three fields."""
    targets = values[_TARGETS]
    if targets:
        values[_TARGETS] = [
            {"type": t.get("type"), "id": t.get("id"), "name": t.get("name")}
            if isinstance(t, dict)
            else t
            for t in targets
        ]
    return values


def _included(leaf: bytes, seq: int, size: int, proof: list[bytes], root: bytes) -> bool:
    try:
        return merkle.verify_inclusion(leaf, seq, size, proof, root)
    except merkle.ProofError:  # a proof line altered out of shape
        return False
