"""kit/merkle_range: a range's leaves plus the hashes outside it reproduce the root."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailkeep.kit.merkle import CompactRange, ProofError, root_from_leaf_hashes
from trailkeep.kit.merkle_range import (
    RangeFolder,
    inside_nodes,
    node_from_tiles,
    outside_nodes,
    root_from_range,
)


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(n)]


def _stored_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every complete node, as a store keeps them."""
    frontier = CompactRange()
    return {(n.level, n.index): n.hash for n in frontier.extend(leaves)}


def _fold(begin: int, end: int, size: int, leaves: list[bytes]) -> list[bytes]:
    folder = RangeFolder(begin, end, size)
    for leaf in leaves[begin:end]:
        folder.feed(leaf)
    assert folder.done
    return folder.hashes


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, 300))
    begin = draw(st.integers(0, size - 1))
    end = draw(st.integers(begin + 1, size))
    return begin, end, size


@given(_ranges())
def test_range_and_outside_hashes_reproduce_the_root(case: tuple[int, int, int]) -> None:
    begin, end, size = case
    leaves = _leaves(size)
    nodes = _stored_nodes(leaves)
    outside = [
        node_from_tiles(lo, hi, lambda lv, ix: nodes[(lv, ix)])
        for lo, hi in outside_nodes(begin, end, size)
    ]
    root = root_from_range(begin, end, size, _fold(begin, end, size, leaves), outside)
    assert root == root_from_leaf_hashes(leaves)


@given(_ranges(), st.data())
def test_a_changed_missing_or_extra_leaf_changes_the_root(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    begin, end, size = case
    leaves = _leaves(size)
    nodes = _stored_nodes(leaves)
    outside = [
        node_from_tiles(lo, hi, lambda lv, ix: nodes[(lv, ix)])
        for lo, hi in outside_nodes(begin, end, size)
    ]
    true_root = root_from_leaf_hashes(leaves)
    changed = list(leaves)
    at = data.draw(st.integers(begin, end - 1))
    changed[at] = hashlib.sha256(b"tampered").digest()
    assert root_from_range(begin, end, size, _fold(begin, end, size, changed), outside) != true_root
    # one leaf fewer: the folder never completes its last node
    folder = RangeFolder(begin, end, size)
    for leaf in leaves[begin : end - 1]:
        folder.feed(leaf)
    assert not folder.done


def test_outside_nodes_are_logarithmic_and_disjoint() -> None:
    size = 1_000_003
    outside = outside_nodes(1234, 987_654, size)
    inside = inside_nodes(1234, 987_654, size)
    assert len(outside) <= 2 * size.bit_length()
    covered = sorted(outside + inside)
    assert covered[0][0] == 0 and covered[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert outside_nodes(0, size, size) == []


def test_wrong_inputs_are_refused() -> None:
    with pytest.raises(ProofError):
        outside_nodes(5, 5, 10)
    with pytest.raises(ProofError):
        root_from_range(0, 4, 10, [b"\x00" * 32], [])
    folder = RangeFolder(0, 1, 1)
    folder.feed(b"\x00" * 32)
    with pytest.raises(ProofError):
        folder.feed(b"\x00" * 32)
