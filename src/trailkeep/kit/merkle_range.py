"""Proving a contiguous range of leaves complete: the hashes of the rest of the tree.

An export of the seqs ``[begin, end)`` of a tree of ``size`` leaves is complete and
unchanged if its leaves, together with the hashes of every part of the tree *outside*
the range, reproduce the signed root. The parts outside are the maximal nodes of the
RFC tree (RFC 9162 section 2.1.1, MTH's recursive split) that share no leaf with the
range: at most two per level, so O(log size) hashes whatever the range's length. A
verifier folds the range's own leaves into the maximal nodes *inside* it as they
stream past (:class:`RangeFolder`, O(log n) memory), then walks the RFC tree once,
taking each node from one list or the other (:func:`root_from_range`).

A node of the RFC tree here is a half-open leaf interval ``[lo, hi)``; it is perfect
unless it lies on the right edge. Pure: no storage, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from trailkeep.kit.merkle import CompactRange, ProofError, node_hash

__all__ = [
    "Interval",
    "RangeFolder",
    "inside_nodes",
    "node_from_tiles",
    "outside_nodes",
    "root_from_range",
    "tiling",
]

Interval = tuple[int, int]
"""``[lo, hi)``: the leaves under one node of the RFC tree."""


def _split(width: int) -> int:
    """The largest power of two strictly smaller than ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _check(begin: int, end: int, size: int) -> None:
    if not 0 <= begin < end <= size:
        raise ProofError(f"range [{begin}, {end}) is not a non-empty part of a tree of {size}")


def _walk(begin: int, end: int, size: int) -> Iterator[tuple[bool, Interval]]:
    """The maximal RFC-tree nodes that lie wholly inside or wholly outside
    ``[begin, end)``, left to right: ``(inside, (lo, hi))``."""
    stack: list[Interval] = [(0, size)]
    while stack:
        lo, hi = stack.pop()
        if hi <= begin or lo >= end:
            yield False, (lo, hi)
        elif begin <= lo and hi <= end:
            yield True, (lo, hi)
        else:
            mid = lo + _split(hi - lo)
            stack.append((mid, hi))  # popped after the left child: left to right
            stack.append((lo, mid))


def outside_nodes(begin: int, end: int, size: int) -> list[Interval]:
    """The maximal nodes sharing no leaf with ``[begin, end)``: what a bundle carries."""
    _check(begin, end, size)
    return [node for inside, node in _walk(begin, end, size) if not inside]


def inside_nodes(begin: int, end: int, size: int) -> list[Interval]:
    """The maximal nodes made only of leaves of ``[begin, end)``, left to right; they
    tile the range exactly."""
    _check(begin, end, size)
    return [node for inside, node in _walk(begin, end, size) if inside]


def tiling(lo: int, hi: int) -> list[tuple[int, int]]:
    """The complete ``(level, index)`` nodes whose hashes fold into node ``[lo, hi)``.

    Every RFC-tree node starts on a boundary of a power of two at least its width, so
    largest-first tiling gives exactly the subtrees MTH recurses into.
    """
    tiles: list[tuple[int, int]] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        tiles.append((level, lo >> level))
        lo += 1 << level
    return tiles


def node_from_tiles(lo: int, hi: int, get_node: Callable[[int, int], bytes]) -> bytes:
    """The hash of RFC-tree node ``[lo, hi)`` from the stored complete nodes tiling it."""
    hashes = [get_node(level, index) for level, index in tiling(lo, hi)]
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


class RangeFolder:
    """Folds the leaves of ``[begin, end)``, fed in seq order, into the hashes of the
    maximal nodes inside the range (:func:`inside_nodes`), keeping O(log n) hashes."""

    def __init__(self, begin: int, end: int, size: int) -> None:
        self._nodes = inside_nodes(begin, end, size)
        self._next = 0  # index into _nodes of the node being filled
        self._frontier = CompactRange()
        self.hashes: list[bytes] = []
        self.fed = 0

    @property
    def done(self) -> bool:
        return self._next == len(self._nodes)

    def feed(self, leaf: bytes) -> None:
        if self.done:
            raise ProofError("more leaves than the range holds")
        self._frontier.append(leaf)
        self.fed += 1
        lo, hi = self._nodes[self._next]
        if self._frontier.size == hi - lo:
            self.hashes.append(self._frontier.root())
            self._frontier = CompactRange()
            self._next += 1


def root_from_range(
    begin: int, end: int, size: int, inside: list[bytes], outside: list[bytes]
) -> bytes:
    """The root of the tree of ``size`` from the hashes of the maximal nodes inside
    ``[begin, end)`` (in order) and of those outside it (in order)."""
    _check(begin, end, size)
    want_in, want_out = len(inside_nodes(begin, end, size)), len(outside_nodes(begin, end, size))
    if len(inside) != want_in or len(outside) != want_out:
        raise ProofError(
            f"range [{begin}, {end}) of a tree of {size} needs {want_in} inside and"
            f" {want_out} outside hashes, got {len(inside)} and {len(outside)}"
        )
    ins, outs = iter(inside), iter(outside)

    def node(lo: int, hi: int) -> bytes:
        if hi <= begin or lo >= end:
            return next(outs)
        if begin <= lo and hi <= end:
            return next(ins)
        mid = lo + _split(hi - lo)
        left = node(lo, mid)  # the depth is at most 64: recursion is fine
        return node_hash(left, node(mid, hi))

    return node(0, size)
