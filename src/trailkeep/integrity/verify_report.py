"""What ``trailkeep verify`` found in an exported log: findings, verdict, JSON and text.

Kept apart from the scanning code (integrity/verify.py) so that the report's shape, which
auditors script against through ``--json``, is in one place. Every list of findings
keeps at most :data:`MAX_LISTED` items but counts them all: a file with a million bad
lines must neither exhaust memory nor print a million lines, yet must say how many.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "MAX_LISTED",
    "BadLine",
    "Beyond",
    "Duplicate",
    "Findings",
    "Foreign",
    "Modified",
    "Reordered",
    "Report",
    "TileStatus",
    "seq_ranges",
]

MAX_LISTED = 100
"""Findings of one kind listed by line or seq; beyond that they are only counted."""

T = TypeVar("T")


class Findings(Generic[T]):
    """The first :data:`MAX_LISTED` findings of one kind, and how many there were."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.total = 0

    def add(self, item: T) -> None:
        self.total += 1
        if len(self.items) < MAX_LISTED:
            self.items.append(item)

    def __bool__(self) -> bool:
        return self.total > 0


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a usable event. ``kind`` is one of :data:`BAD_LINE_KINDS`."""

    line: int
    kind: str
    message: str


BAD_LINE_KINDS = (
    "empty",  # a blank line before the end of the file
    "too_long",  # longer than the limit; not read
    "nul",  # NUL bytes: a binary or corrupted file
    "truncated",  # JSON that stops in the middle
    "not_json",
    "not_object",  # valid JSON, but not an object
    "bad_seq",  # no "seq", or not a non-negative integer
    "not_canonical",  # JSON that RFC 8785 cannot encode (e.g. huge integers)
)


@dataclass(frozen=True, slots=True)
class Foreign:
    """An event whose ``tenant_id`` is not the tenant of the checkpoint's log."""

    line: int
    seq: int
    tenant_id: object


@dataclass(frozen=True, slots=True)
class Reordered:
    """``seq`` on ``line`` comes after the larger ``after_seq`` on ``after_line``."""

    line: int
    seq: int
    after_line: int
    after_seq: int


@dataclass(slots=True)
class Duplicate:
    """A seq on more than one line; ``identical`` once known (None: could not re-read)."""

    seq: int
    lines: list[int]
    identical: bool | None = None


@dataclass(frozen=True, slots=True)
class Beyond:
    """An event at or past the checkpoint's size: newer than the checkpoint, not verified."""

    line: int
    seq: int


@dataclass(frozen=True, slots=True)
class Modified:
    """An event whose leaf hash differs from the leaf the verified tiles hold for its seq."""

    line: int
    seq: int


@dataclass(slots=True)
class TileStatus:
    """What became of ``--tiles``: "verified", "rejected" (do not match the signed root)
    or "unavailable" (could not be read); ``message`` says why for the last two."""

    source: str
    status: str
    message: str = ""


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs as inclusive (first, last) ranges: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for seq in seqs:
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def _range_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


@dataclass
class Report:
    """The outcome of checking one exported log against one signed checkpoint."""

    origin: str
    tenant_id: str
    size: int
    root_hash: bytes
    any_order: bool = False
    lines: int = 0
    events: int = 0  # distinct seqs below ``size`` with a usable event
    bad_lines: Findings[BadLine] = field(default_factory=Findings)
    foreign: Findings[Foreign] = field(default_factory=Findings)
    reordered: Findings[Reordered] = field(default_factory=Findings)
    duplicates: Findings[Duplicate] = field(default_factory=Findings)
    beyond: Findings[Beyond] = field(default_factory=Findings)
    missing: list[tuple[int, int]] = field(default_factory=list)  # at most MAX_LISTED
    missing_total: int = 0
    computed_root: bytes | None = None  # None when seqs are missing
    tiles: TileStatus | None = None
    modified: Findings[Modified] = field(default_factory=Findings)

    @property
    def root_matches(self) -> bool:
        return self.computed_root == self.root_hash

    @property
    def ok(self) -> bool:
        """True only when every seq below ``size`` was present once and hashed to the root.

        Events beyond the checkpoint do not count against it: they are newer than the
        checkpoint (the log grew after it was signed) and are reported as unverified.
        """
        tiles_ok = self.tiles is None or self.tiles.status == "verified"
        return (
            self.root_matches
            and tiles_ok
            and not (self.bad_lines or self.foreign or self.duplicates or self.modified)
            and not self.missing_total
            and (self.any_order or not self.reordered)
        )

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` report: stable keys, every list capped, every count complete."""
        return {
            "ok": self.ok,
            "mode": "offline",
            "checkpoint": {
                "origin": self.origin,
                "tenant_id": self.tenant_id,
                "size": self.size,
                "root_hash": _b64(self.root_hash),
            },
            "lines": self.lines,
            "events_verified": self.events if self.ok else 0,
            "events_in_range": self.events,
            "root": {
                "computed": _b64(self.computed_root) if self.computed_root else None,
                "matches": self.root_matches,
            },
            "bad_lines": _listing(self.bad_lines, _bad_line_json),
            "foreign_tenant": _listing(
                self.foreign,
                lambda f: {"line": f.line, "seq": f.seq, "tenant_id": f.tenant_id},
            ),
            "duplicates": _listing(
                self.duplicates,
                lambda d: {"seq": d.seq, "lines": d.lines, "identical": d.identical},
            ),
            "missing": {
                "count": self.missing_total,
                "ranges": [[first, last] for first, last in self.missing],
            },
            "reordered": {
                **_listing(self.reordered, _reordered_json),
                "allowed": self.any_order,
            },
            "beyond_checkpoint": _listing(self.beyond, lambda b: {"line": b.line, "seq": b.seq}),
            "tiles": self._tiles_json(),
            "modified": _listing(self.modified, lambda m: {"line": m.line, "seq": m.seq}),
        }

    def _tiles_json(self) -> dict[str, str] | None:
        if self.tiles is None:
            return None
        return {
            "source": self.tiles.source,
            "status": self.tiles.status,
            "message": self.tiles.message,
        }

    # ------------------------------------------------------------------ text

    def summary(self) -> str:
        """One line: the verdict."""
        where = f"the checkpoint of {self.origin} at size {self.size:,}"
        if not self.ok:
            return f"FAILED: the events do not match {where}"
        if self.size == 0:
            return f"OK: {where} is of an empty log"
        return f"OK: all {self.events:,} events (seqs 0-{self.size - 1}) match {where}"

    def details(self) -> list[str]:
        """The findings, one line each (lists capped), in the order worth reading."""
        out: list[str] = []
        out += self._line_details()
        out += self._seq_details()
        out += self._root_details()
        if self.beyond:
            out.append(
                f"note: {self.beyond.total:,} event(s) are beyond the checkpoint (seq >= "
                f"{self.size}) and were not verified: "
                + _some(f"seq {b.seq} (line {b.line})" for b in self.beyond.items)
                + _more(self.beyond)
            )
        return out

    def _line_details(self) -> list[str]:
        found = [(b.line, f"line {b.line}: {b.message}") for b in self.bad_lines.items]
        found += [(f.line, self._foreign_text(f)) for f in self.foreign.items]
        out = [text for _, text in sorted(found)]
        out += _more_line(self.bad_lines, "bad line")
        out += _more_line(self.foreign, "event of another tenant")
        return out

    def _foreign_text(self, f: Foreign) -> str:
        return (
            f"line {f.line}: seq {f.seq} belongs to tenant {f.tenant_id!r}, not {self.tenant_id!r}"
        )

    def _seq_details(self) -> list[str]:
        out = []
        for d in self.duplicates.items:
            how = {True: " (identical)", False: " (different contents)", None: ""}[d.identical]
            lines = ", ".join(str(n) for n in d.lines)
            out.append(f"seq {d.seq}: duplicated on lines {lines}{how}")
        out += _more_line(self.duplicates, "duplicated seq")
        if self.missing_total:
            ranges = ", ".join(_range_text(a, b) for a, b in self.missing)
            cut = " ..." if len(self.missing) >= MAX_LISTED else ""
            out.append(f"missing: {self.missing_total:,} seq(s): {ranges}{cut}")
        word = "note" if self.any_order else "out of order"
        out += [
            f"{word}: line {r.line}: seq {r.seq} comes after seq {r.after_seq} "
            f"(line {r.after_line})"
            for r in self.reordered.items
        ]
        out += _more_line(self.reordered, "out-of-order line")
        return out

    def _root_details(self) -> list[str]:
        out = []
        if self.tiles is not None and self.tiles.status != "verified":
            out.append(f"tiles {self.tiles.source}: {self.tiles.status}: {self.tiles.message}")
        out += [f"line {m.line}: seq {m.seq} was modified" for m in self.modified.items]
        out += _more_line(self.modified, "modified event")
        if self.computed_root is None:
            if self.missing_total:
                out.append("root: not computed, because seqs are missing")
        elif not self.root_matches:
            out.append(self._mismatch_text())
        return out

    def _mismatch_text(self) -> str:
        text = (
            f"root: the events hash to {_b64(self.computed_root)}, the checkpoint says "
            f"{_b64(self.root_hash)}"
        )
        if self.modified:
            return text + f": {self.modified.total:,} modified event(s), listed above"
        if self.tiles is not None and self.tiles.status == "verified":
            return text  # unreachable in practice: verified tiles pin every leaf
        return (
            text + ": the content of some event(s) was modified; pass --tiles (a tile "
            "directory or the log's tile URL) to find out which"
        )


def _b64(value: bytes | None) -> str:
    return "" if value is None else base64.b64encode(value).decode("ascii")


def _listing(findings: Findings[Any], render: Any) -> dict[str, Any]:
    return {"count": findings.total, "items": [render(item) for item in findings.items]}


def _bad_line_json(b: BadLine) -> dict[str, Any]:
    return {"line": b.line, "kind": b.kind, "message": b.message}


def _reordered_json(r: Reordered) -> dict[str, Any]:
    return {"line": r.line, "seq": r.seq, "after_line": r.after_line, "after_seq": r.after_seq}


def _some(parts: Any) -> str:
    return ", ".join(parts)


def _more(findings: Findings[Any]) -> str:
    hidden = findings.total - len(findings.items)
    return f" and {hidden:,} more" if hidden else ""


def _more_line(findings: Findings[Any], what: str) -> list[str]:
    hidden = findings.total - len(findings.items)
    return [f"... and {hidden:,} more {what}(s) ({findings.total:,} in all)"] if hidden else []
