"""Offline audit of an exported tenant log against a signed checkpoint (``trailkeep verify``).

Leaf ``i`` of a tenant's tree is SHA-256(0x00 || RFC 8785 bytes of the event with
``seq == i``), so an export (JSONL, one stored event per line) can be checked against
a checkpoint without the server: recompute every leaf, fold them into the root and
compare. A root only says *that* something differs; where it does not match, the
level-0 tiles (``--tiles``) say *which* events: they are first checked against the
signed root themselves, so forged tiles are refused before they are used.

The scan streams: memory is O(log n) for an export in seq order; events that arrive
before a smaller seq wait in :class:`_Pending` (about 100 bytes each, then 33 bytes per
seq once there are many). Speed comes from :func:`_collect`: a msgspec decode whose
float hook has the reference write each float as JCS, then orjson's sorted output,
which *is* RFC 8785 for such values unless an integer is beyond ±(2**53-1) or a key may
sort differently (only possible with characters beyond the BMP); those rare events, and
anything malformed, go through :func:`_classify`, which decides with the reference
``canonical_json``.

Pure apart from reading files and streams; HTTP tiles come from integrity/monitor.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import orjson
import rfc8785

from trailkeep.integrity.checkpoint import Checkpoint
from trailkeep.integrity.verify_inputs import VerifyError, tenant_of
from trailkeep.integrity.verify_report import (
    MAX_LISTED,
    BadLine,
    Beyond,
    Duplicate,
    Foreign,
    Modified,
    Reordered,
    Report,
    TileStatus,
)
from trailkeep.integrity.verify_tiles import FetchTile, TileCheckError, VerifiedTiles, check_tiles
from trailkeep.kit.canonical import canonical_json, orjson_matches_jcs
from trailkeep.kit.merkle import CompactRange, leaf_hash

__all__ = ["MAX_LINE_BYTES", "VerifyError", "leaf_items", "verify_export"]

MAX_LINE_BYTES = 8 << 20
"""Longest line read as an event (the server's own limit is far lower, 64 KiB by default)."""

_CHUNK = 1 << 20
# Sorted keys, and integers beyond ±(2**53-1) raise: exactly where JCS numbers stop.
_SORTED_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_TOO_LONG = b"\n"  # never a line (lines are split on it): marks one that was not read
# The lead bytes of 4-byte UTF-8 sequences (characters beyond the BMP), all made 0xF0.
_LEADS_TABLE = bytes.maketrans(b"\xf1\xf2\xf3\xf4", b"\xf0\xf0\xf0\xf0")
_BEYOND_BMP = b"\xf0"


# ------------------------------------------------------------------ reading lines


def _batches(stream: BinaryIO, max_line: int) -> Iterator[list[bytes]]:
    """Lines in batches (no newlines), a too-long line replaced by ``_TOO_LONG``.

    Memory stays bounded whatever the input: a line is never held beyond
    ``max_line`` bytes, the rest of it is skipped as it streams past.
    """
    carry = b""
    skipping = False
    while chunk := stream.read(_CHUNK):
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk, skipping = chunk[end + 1 :], False
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        if lines and max(map(len, lines)) > max_line:
            lines = [line if len(line) <= max_line else _TOO_LONG for line in lines]
        if len(carry) > max_line:
            lines.append(_TOO_LONG)
            carry, skipping = b"", True
        yield lines
    if carry:
        yield [carry]


# ------------------------------------------------------------------ leaves of lines


class _SlowPath(Exception):
    """This line is not for the fast path; :func:`_classify` decides."""


def _jcs_float(literal: str) -> orjson.Fragment:
    # orjson does not write floats as JCS does (1.0, 1e+16, ...); the reference does,
    # and orjson copies a Fragment verbatim. Non-finite values raise: slow path.
    return orjson.Fragment(rfc8785.dumps(float(literal)))


_DECODE = msgspec.json.Decoder(float_hook=_jcs_float).decode
_DECODE_ANY = msgspec.json.Decoder().decode

# One parsed line: (line number, seq, leaf hash) for an event of the tenant, else a finding.
_Item = tuple[int, int, bytes] | BadLine | Foreign


def _collect(lines: list[bytes], lineno: int, tenant: str, max_line: int) -> list[_Item]:
    """The leaf of every line, in order; the hot loop of the whole audit.

    The fast path needs an object of ``tenant`` whose sorted orjson bytes are its JCS
    bytes (kit/canonical.py lists where they differ): floats are written by the
    reference while decoding (:func:`_jcs_float`), integers beyond ±(2**53-1) are
    refused by OPT_STRICT_INTEGER, and keys may sort differently only where there is a
    character beyond the BMP (a 4-byte UTF-8 sequence, so never in ASCII output); then
    ``orjson_matches_jcs`` looks at the keys. Anything else: :func:`_classify`.
    """
    out: list[_Item] = []
    append = out.append
    decode, dumps, leaf = _DECODE, orjson.dumps, leaf_hash
    for line in lines:
        lineno += 1
        try:
            obj = decode(line)
            seq = obj["seq"]
            if type(seq) is not int or seq < 0 or obj["tenant_id"] != tenant:
                raise _SlowPath
            canon = dumps(obj, option=_SORTED_STRICT)
            if (
                not canon.isascii()
                and _BEYOND_BMP in canon.translate(_LEADS_TABLE)
                and not orjson_matches_jcs(obj)  # False for floats too: a rare pair
            ):
                raise _SlowPath
        except Exception:  # any doubt at all: the slow path decides, and names the problem
            append(_classify(line, lineno, tenant, max_line))
            continue
        append((lineno, seq, leaf(canon)))
    return out


def _classify(line: bytes, lineno: int, tenant: str, max_line: int) -> _Item:
    """The authoritative (slow) reading of one line: its leaf, or what is wrong with it."""
    if line == _TOO_LONG:
        return BadLine(lineno, "too_long", f"longer than {max_line:,} bytes; not read")
    if not line.strip():
        return BadLine(lineno, "empty", "empty line")
    if b"\x00" in line:
        return BadLine(lineno, "nul", "contains NUL bytes: not a text line")
    try:
        # msgspec keeps integers exact at any size (orjson turns those beyond 64 bits
        # into floats), so what JCS cannot encode is refused instead of rounded.
        obj = _DECODE_ANY(line)
    except Exception as exc:  # DecodeError, UnicodeDecodeError, RecursionError
        return _not_json(line, lineno, exc)
    if type(obj) is not dict:
        return BadLine(lineno, "not_object", f"a JSON {_json_kind(obj)}, not an event object")
    seq = obj.get("seq")
    if type(seq) is not int or seq < 0:
        got = 'no "seq"' if "seq" not in obj else f'"seq" is {_short(seq)}'
        return BadLine(lineno, "bad_seq", f"{got}; want a non-negative integer")
    if obj.get("tenant_id") != tenant:
        return Foreign(lineno, seq, obj.get("tenant_id"))
    try:
        canon = canonical_json(obj)
    except (ValueError, TypeError, RecursionError) as exc:
        return BadLine(lineno, "not_canonical", f"seq {seq} cannot be encoded as RFC 8785: {exc}")
    return (lineno, seq, leaf_hash(canon))


def _not_json(line: bytes, lineno: int, exc: Exception) -> BadLine:
    if isinstance(exc, UnicodeDecodeError):
        return BadLine(lineno, "not_json", f"not UTF-8 text (byte {exc.start})")
    if isinstance(exc, RecursionError):
        return BadLine(lineno, "not_json", "JSON nested too deeply")
    if "truncated" in str(exc):
        return BadLine(lineno, "truncated", f"truncated: the JSON stops after {len(line)} bytes")
    reason = str(exc).removeprefix("JSON is malformed: ")
    return BadLine(lineno, "not_json", f"not valid JSON: {reason}")


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return kinds.get(type(value), "null")


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if value is not None else "null"
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------ out-of-order leaves


class _Pending:
    """Leaves whose seq is above the next one the tree needs: held until the gap fills.

    A dict while there are few; past ``sparse_limit`` (a huge gap, e.g. seq 0 deleted)
    one bytearray of hashes and one of presence flags over [base, size), 33 bytes a seq
    instead of ~100 per entry - but only where that is smaller: a partial export of a
    huge log must not allocate for seqs it does not hold.
    """

    __slots__ = ("_base", "_hashes", "_present", "_sparse", "_sparse_limit", "count")

    def __init__(self, sparse_limit: int = 1 << 20) -> None:
        self._sparse: dict[int, bytes] | None = {}
        self._sparse_limit = sparse_limit
        self._base = 0
        self._hashes = bytearray()
        self._present = bytearray()
        self.count = 0

    def __contains__(self, seq: int) -> bool:
        if self._sparse is not None:
            return seq in self._sparse
        return bool(self._present[seq - self._base])

    def put(self, seq: int, leaf: bytes, base: int, size: int) -> None:
        """Hold ``leaf``; ``base`` (< seq) is the next seq the tree needs."""
        self.count += 1
        if self._sparse is not None:
            self._sparse[seq] = leaf
            held = len(self._sparse)
            if held > self._sparse_limit and size - base <= 3 * held:
                self._densify(base, size)
            return
        at = seq - self._base
        self._present[at] = 1
        self._hashes[at * 32 : at * 32 + 32] = leaf

    def _densify(self, base: int, size: int) -> None:
        assert self._sparse is not None
        self._base = base
        self._present = bytearray(size - base)
        self._hashes = bytearray(32 * (size - base))
        sparse, self._sparse = self._sparse, None
        for seq, leaf in sparse.items():
            self._present[seq - base] = 1
            self._hashes[(seq - base) * 32 : (seq - base) * 32 + 32] = leaf

    def pop(self, seq: int) -> bytes | None:
        if self._sparse is not None:
            leaf = self._sparse.pop(seq, None)
        elif self._present[seq - self._base]:
            at = seq - self._base
            self._present[at] = 0
            leaf = bytes(self._hashes[at * 32 : at * 32 + 32])
        else:
            leaf = None
        self.count -= leaf is not None
        return leaf

    def missing(self, start: int, size: int) -> tuple[list[tuple[int, int]], int]:
        """The first MAX_LISTED ranges of seqs in [start, size) not held, and their count."""
        if self._sparse is not None:
            held = sorted(self._sparse)
            gaps: list[tuple[int, int]] = []
            for seq in [*held, size]:
                if seq > start:
                    gaps.append((start, seq - 1))
                start = seq + 1
            return gaps[:MAX_LISTED], sum(b - a + 1 for a, b in gaps)
        return self._dense_missing(start, size)

    def _dense_missing(self, start: int, size: int) -> tuple[list[tuple[int, int]], int]:
        ranges: list[tuple[int, int]] = []
        total = 0
        flags, base = self._present, self._base
        at = start - base
        while (gap := flags.find(0, at)) >= 0:
            end = flags.find(1, gap)
            end = len(flags) if end < 0 else end
            total += end - gap
            if len(ranges) < MAX_LISTED:
                ranges.append((gap + base, end - 1 + base))
            at = end
        return ranges, total


# ------------------------------------------------------------------ the scan


class _Scan:
    """Places each line's leaf: into the tree, or into a finding of the report."""

    def __init__(self, report: Report, tiles: VerifiedTiles | None) -> None:
        self.report = report
        self.tiles = tiles
        self.peaks: list[bytes] = []  # the frontier of leaves 0..next_seq-1
        self.next_seq = 0
        self.pending = _Pending()
        self.last_seq = -1
        self.last_line = 0
        self.blanks: list[BadLine] = []  # blank lines: an error only if more follows
        self.dups: dict[int, Duplicate] = {}

    def place(self, items: list[_Item]) -> None:
        sha256, peaks = hashlib.sha256, self.peaks
        # The common case runs on locals: the next seq, in order, nothing pending, no
        # tiles to compare with. ``fast_until`` is 0 while that cannot happen.
        fast_until = self.report.size if self.tiles is None else 0
        next_seq = self.next_seq
        for item in items:
            if not isinstance(item, tuple):
                self._finding(item)
                continue
            if self.blanks:
                self._flush_blanks()
            lineno, seq, leaf = item
            if seq == next_seq < fast_until and not self.pending.count and seq > self.last_seq:
                next_seq = seq + 1
                self.last_seq = seq
                self.last_line = lineno
                while seq & 1:
                    leaf = sha256(b"\x01" + peaks.pop() + leaf).digest()
                    seq >>= 1
                peaks.append(leaf)
            else:
                self.next_seq = next_seq
                self._place_one(lineno, seq, leaf)
                next_seq = self.next_seq
                fast_until = self.report.size if self.tiles is None else 0
        self.next_seq = next_seq

    def _finding(self, item: BadLine | Foreign) -> None:
        if isinstance(item, Foreign):
            self._flush_blanks()
            self.report.foreign.add(item)
        elif item.kind == "empty":
            self.blanks.append(item)
        else:
            self._flush_blanks()
            self.report.bad_lines.add(item)

    def _flush_blanks(self) -> None:
        for blank in self.blanks:
            self.report.bad_lines.add(blank)
        self.blanks.clear()

    def _place_one(self, lineno: int, seq: int, leaf: bytes) -> None:
        report = self.report
        if seq < report.size:
            if self.tiles is not None and leaf != self._tile_leaf(seq):
                report.modified.add(Modified(lineno, seq))
            if seq < self.next_seq or seq in self.pending:
                self._duplicate(seq, lineno)  # a duplicate, not also an order problem
                return
        if seq < self.last_seq:
            report.reordered.add(Reordered(lineno, seq, self.last_line, self.last_seq))
        self.last_seq, self.last_line = seq, lineno
        if seq >= report.size:
            report.beyond.add(Beyond(lineno, seq))
        elif seq == self.next_seq:
            self._push(leaf)
            while self.pending.count and (held := self.pending.pop(self.next_seq)) is not None:
                self._push(held)
        else:
            self.pending.put(seq, leaf, self.next_seq, report.size)

    def _tile_leaf(self, seq: int) -> bytes | None:
        assert self.tiles is not None and self.report.tiles is not None
        try:
            return self.tiles.leaf(seq)
        except TileCheckError as exc:  # a re-read tile changed or vanished: stop using them
            self.report.tiles.status, self.report.tiles.message = exc.status, exc.message
            self.tiles = None
            return None

    def _push(self, leaf: bytes) -> None:
        index = self.next_seq
        self.next_seq += 1
        while index & 1:
            leaf = hashlib.sha256(b"\x01" + self.peaks.pop() + leaf).digest()
            index >>= 1
        self.peaks.append(leaf)

    def _duplicate(self, seq: int, lineno: int) -> None:
        findings = self.report.duplicates
        findings.total += 1  # counts duplicate lines: every occurrence after the first
        known = self.dups.get(seq)
        if known is not None:
            known.lines.append(lineno)
        elif len(findings.items) < MAX_LISTED:
            self.dups[seq] = Duplicate(seq, [lineno])
            findings.items.append(self.dups[seq])

    def finish(self) -> None:
        report = self.report
        report.events = self.next_seq + self.pending.count
        report.missing, report.missing_total = self.pending.missing(self.next_seq, report.size)
        if not report.missing_total:
            frontier = CompactRange.from_peaks(report.size, self.peaks)
            report.computed_root = frontier.root()


def _scan(stream: BinaryIO, report: Report, tiles: VerifiedTiles | None, max_line: int) -> None:
    scan = _Scan(report, tiles)
    lineno = 0
    for lines in _batches(stream, max_line):
        scan.place(_collect(lines, lineno, report.tenant_id, max_line))
        lineno += len(lines)
    report.lines = lineno
    scan.finish()


def _resolve_duplicates(stream: BinaryIO, report: Report, max_line: int) -> None:
    """Second pass, only when seqs were duplicated: every line of each and whether they agree."""
    wanted = {d.seq: d for d in report.duplicates.items}
    seen: dict[int, dict[int, bytes]] = {seq: {} for seq in wanted}
    lineno = 0
    for lines in _batches(stream, max_line):
        for item in _collect(lines, lineno, report.tenant_id, max_line):
            if type(item) is tuple and item[1] in seen:
                seen[item[1]][item[0]] = item[2]
        lineno += len(lines)
    for seq, found in seen.items():
        wanted[seq].lines = sorted(found)
        wanted[seq].identical = len(set(found.values())) == 1


def _tiles_for(
    checkpoint: Checkpoint, fetch: FetchTile, label: str, report: Report
) -> VerifiedTiles | None:
    try:
        tiles = check_tiles(checkpoint.size, checkpoint.root_hash, fetch)
    except TileCheckError as exc:
        report.tiles = TileStatus(label, exc.status, exc.message)
        return None
    report.tiles = TileStatus(label, "verified")
    return tiles


def verify_export(
    events: Path | BinaryIO,
    checkpoint: Checkpoint,
    *,
    tiles: FetchTile | None = None,
    tiles_label: str = "",
    any_order: bool = False,
    max_line: int = MAX_LINE_BYTES,
) -> Report:
    """Check the export ``events`` (a path, or a binary stream read once) against ``checkpoint``.

    With ``tiles``, the level-0 tiles are checked against the signed root first and,
    if they match, each event's leaf is compared with its tile's leaf. Raises
    :class:`VerifyError` only when the export cannot be read at all.
    """
    tenant = tenant_of(checkpoint.origin)
    report = Report(checkpoint.origin, tenant, checkpoint.size, checkpoint.root_hash)
    report.any_order = any_order
    verified = None if tiles is None else _tiles_for(checkpoint, tiles, tiles_label, report)
    if not isinstance(events, Path):
        _scan(events, report, verified, max_line)
        return report
    with _open(events) as stream:
        _scan(stream, report, verified, max_line)
    if report.duplicates:
        with _open(events) as stream:
            _resolve_duplicates(stream, report, max_line)
    return report


def _open(path: Path) -> BinaryIO:
    try:
        if path.is_dir():
            raise VerifyError(f"events file {path} is a directory")
        return path.open("rb")
    except OSError as exc:
        raise VerifyError(f"cannot read events file {path}: {exc.strerror or exc}") from None


def leaf_items(lines: list[bytes], first_lineno: int, tenant: str) -> list[_Item]:
    """For each stored event (one JSON text each): ``(number, seq, leaf hash)``, or the
    finding (BadLine, Foreign) that says why it is not one; numbered from
    ``first_lineno + 1``. The export bundle's check reads its rows with this."""
    return _collect(lines, first_lineno, tenant, MAX_LINE_BYTES)
