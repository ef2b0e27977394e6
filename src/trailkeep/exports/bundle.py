"""The verification bundle beside every export's data file, and the archive holding both.

An unpacked archive is one folder that ``trailkeep verify DIR --key VKEY`` checks:

- ``manifest.json``: tenant, origin, query and what it means, seq range, row count,
  the view (stored / decrypted / masked), format version, and the SHA-256 and size
  of every other file;
- ``checkpoint.txt``: the tenant's signed checkpoint (C2SP signed note) the proofs are
  against;
- an unfiltered seq range: ``leaves.bin``, the range's leaf hashes as the log holds
  them (32 bytes each, in seq order), and ``range-proof.json``, the hashes of the tree
  outside the range (kit/merkle_range.py). The leaves plus these reproduce the signed
  root, so the leaves are the log's; each row must then hash to its seq's leaf, every
  seq exactly once: nothing left out, added, reordered or changed, and a changed row is
  named, not only detected;
- a filtered export (a query or a time window): ``proofs.jsonl``, one inclusion proof
  per exported event, in file order. That proves each event is in the log unchanged;
  that the filter selected every matching event cannot be proven without the others,
  and the manifest's ``statement`` says so.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zipfile
from pathlib import Path
from typing import IO, Any

import orjson

from trailkeep.kit.hashing import file_sha256

MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.txt"
RANGE_PROOF = "range-proof.json"
LEAVES = "leaves.bin"
PROOFS = "proofs.jsonl"
BUNDLE_FORMAT = "trailkeep-export"
BUNDLE_VERSION = 1
DATA_STEM = "events"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def range_proof_json(tree_size: int, begin: int, end: int, outside: list[bytes]) -> bytes:
    from trailkeep.kit.merkle_range import outside_nodes

    nodes = outside_nodes(begin, end, tree_size)
    return orjson.dumps(
        {
            "tree_size": tree_size,
            "from_seq": begin,
            "to_seq": end,
            "outside": [
                {"lo": lo, "hi": hi, "hash": b64(h)}
                for (lo, hi), h in zip(nodes, outside, strict=True)
            ],
        },
        option=orjson.OPT_INDENT_2,
    )


def proof_line(seq: int, leaf: bytes, proof: list[bytes]) -> bytes:
    return orjson.dumps({"seq": seq, "leaf_hash": b64(leaf), "proof": [b64(h) for h in proof]})


def statement(filtered: bool, q: str, rows: int, begin: int, end: int) -> str:
    if not filtered:
        return (
            f"every event of seqs {begin}..{end - 1} ({rows} events), complete: the range's"
            " leaves and range-proof.json reproduce the checkpoint's root"
        )
    return (
        f"the {rows} events of seqs {begin}..{end - 1} that match the filter"
        f" ({q or 'time window only'}); each is proven in the log by proofs.jsonl; that no"
        " matching event is missing is the server's statement, not a proof"
    )


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2)


def open_archive(path: Path) -> zipfile.ZipFile:
    # Deflate level 1: several times faster than the default 6 on JSON text, for most of
    # its ratio; the data is streamed through it once.
    return zipfile.ZipFile(path, "w", allowZip64=True, compresslevel=1)


def open_member(zf: zipfile.ZipFile, top: str, name: str, compress: bool) -> IO[bytes]:
    """A member of the archive to stream into (zip64: the data file may pass 4 GiB)."""
    info = zipfile.ZipInfo(f"{top}/{name}", date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    return zf.open(info, "w", force_zip64=True)


def add_files(
    zf: zipfile.ZipFile, top: str, files: dict[str, bytes | Path], compress: bool
) -> list[dict[str, Any]]:
    """Add the bundle's other files (bytes, or files written beside the archive) and
    return their manifest entries."""
    listed = []
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    for name, content in files.items():
        if isinstance(content, Path):
            sha, size = file_sha256(content)
            zf.write(content, f"{top}/{name}", compress_type=method)
        else:
            sha, size = hashlib.sha256(content).hexdigest(), len(content)
            zf.writestr(f"{top}/{name}", content, compress_type=method)
        listed.append({"name": name, "sha256": sha, "bytes": size})
    return listed


def sync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
