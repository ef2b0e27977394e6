"""Tiles (kit/tiles.py): the writer's frontier, tile paths and proofs read from tiles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.kit import merkle
from trailkeep.kit.tiles import (
    MAX_TREE_SIZE,
    TILE_WIDTH,
    TileError,
    TileFrontier,
    TileNodes,
    TileRow,
    TreeStateError,
    entries_path,
    frontier_tiles,
    max_tile_index,
    needed_tiles,
    parse_entries_path,
    parse_tile_path,
    tile_path,
)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [merkle.leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


def _grow(sizes: list[int]) -> tuple[TileFrontier, dict[tuple[int, int], bytes], list[bytes]]:
    """Grow a tree in steps of ``sizes``, keeping the tile rows an upserting store would."""
    frontier = TileFrontier()
    store: dict[tuple[int, int], bytes] = {}
    leaves: list[bytes] = []
    for step in sizes:
        new = _leaves(step, salt=len(leaves).to_bytes(8, "big"))
        leaves += new
        for key, data in frontier.extend(new).items():
            old = store.get(key, b"")
            assert data.startswith(old), "a stored tile only ever grows"
            store[key] = data
    return frontier, store, leaves


@pytest.mark.parametrize(
    "steps", [[1], [255], [256], [257], [1, 255, 1], [65535, 1], [65536], [70000], [3] * 200]
)
def test_frontier_root_matches_the_rfc_tree(steps: list[int]) -> None:
    frontier, store, leaves = _grow(steps)
    assert frontier.size == len(leaves)
    assert frontier.root() == merkle.root_from_leaf_hashes(leaves)
    # Level 0 tiles are the leaf hashes themselves.
    assert store[(0, 0)] == b"".join(leaves[:TILE_WIDTH])
    # Reloading from the stored tiles, by size or from the last tile of each level,
    # gives the same frontier, which appends the same way.
    by_size = TileFrontier.from_tiles(len(leaves), store)
    last = {}
    for (level, index), data in store.items():
        if level not in last or index > last[level].index:
            last[level] = TileRow(level, index, data)
    by_rows = TileFrontier.from_last_tiles(last.values())
    more = _leaves(300, salt=b"more")
    for again in (by_size, by_rows):
        assert again.size == len(leaves) and again.root() == frontier.root()
        again.extend(more)
        assert again.root() == merkle.root_from_leaf_hashes(leaves + more)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=8), st.data())
def test_proofs_from_tiles_match_the_reference(steps: list[int], data: st.DataObject) -> None:
    _, store, leaves = _grow(steps)
    n = len(leaves)
    nodes = TileNodes(lambda level, index: store[(level, index)])
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = merkle.root_from_leaf_hashes(leaves[:size])
    assert merkle.root_from_nodes(size, nodes) == root
    proof = merkle.inclusion_proof(index, size, nodes)
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    old = data.draw(st.integers(1, size))
    consistency = merkle.consistency_proof(old, size, nodes)
    old_root = merkle.root_from_leaf_hashes(leaves[:old])
    assert merkle.verify_consistency(old, size, old_root, root, consistency)
    wanted = needed_tiles(merkle.inclusion_proof_nodes(index, size))
    assert all(tile in store for tile in wanted)


def test_from_tiles_refuses_tiles_that_do_not_fit() -> None:
    _, store, leaves = _grow([300])
    with pytest.raises(TreeStateError, match="should hold 45 hashes, found 44"):
        TileFrontier.from_tiles(len(leaves) + 1, store)
    rows = [TileRow(0, 1, store[(0, 1)])]  # level 1 missing for a tree of 300
    with pytest.raises(TreeStateError, match="level 1"):
        TileFrontier.from_last_tiles(rows)
    assert TileFrontier.from_last_tiles([]).root() == merkle.EMPTY_ROOT


def test_frontier_tiles() -> None:
    assert frontier_tiles(0) == []
    assert frontier_tiles(256) == [(1, 0, 1)]
    assert frontier_tiles(70000) == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (1, 1234067, 256, "tile/1/x001/x234/067"),
        (0, 5, 7, "tile/0/005.p/7"),
        (2, 1000, 255, "tile/2/x001/000.p/255"),
    ],
)
def test_tile_paths_round_trip(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path.removeprefix("tile/")) == (level, index, width)


@pytest.mark.parametrize(
    "bad",
    ["", "0", "a/000", "0/1", "0/0001", "0/001/002", "0/x01/002", "0/000.p/0", "0/000.p/256",
     "0/000.p/", "0/000.p/07", "9/000", "0/" + "x000/" * 7 + "000", "0/-01", "0/00\x00"],
)  # fmt: skip
def test_bad_tile_paths_are_refused(bad: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(bad)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("00/000", "leading zeros"),
        ("07/000", "leading zeros"),
        ("0/x000/001", "its only spelling is '001'"),
        ("2/x000/x012/345", "its only spelling is 'x012/345'"),
        ("0/\u0663\u0663\u0663", "three digits"),  # Arabic-Indic digits int() would read
        ("\u0663/000", "tile level"),
        ("0/000.p/\u0665", "1 to 255"),
        ("0/x009/x223/x372/x036/x854/x775/808", "beyond any tree"),  # 2**63
        ("0/x009/x223/x372/x036/x854/x775/808.p/5", "beyond any tree"),
        ("7/001", "up to index 0"),
    ],
)
def test_each_tile_has_one_spelling(bad: str, words: str) -> None:
    with pytest.raises(TileError, match=words):
        parse_tile_path(bad)


@given(level=st.integers(0, 7), index=st.integers(0, 2**56), width=st.integers(1, TILE_WIDTH))
def test_every_possible_tile_parses_back_from_its_path(level: int, index: int, width: int) -> None:
    index = min(index, max_tile_index(level))
    path = tile_path(level, index, width).removeprefix("tile/")
    assert parse_tile_path(path) == (level, index, width)
    if level == 0:
        bundle = entries_path(index, width).removeprefix("tile/entries/")
        assert parse_entries_path(bundle) == (index, width)


def test_the_index_bound_is_the_largest_tree_the_store_holds() -> None:
    # The last leaf of the largest tree is in level-0 tile max_tile_index(0).
    assert max_tile_index(0) == (MAX_TREE_SIZE - 1) // TILE_WIDTH
    assert max_tile_index(7) == 0  # level 7 holds at most 127 hashes
    assert parse_entries_path("x036/x028/x797/x018/x963/967.p/255") == (max_tile_index(0), 255)
    with pytest.raises(TileError, match="beyond any tree"):
        parse_entries_path("x036/x028/x797/x018/x963/968")


def test_node_missing_from_tiles_is_a_storage_fault() -> None:
    nodes = TileNodes(lambda level, index: hashlib.sha256(b"x").digest())
    with pytest.raises(merkle.NodeError):
        nodes(0, 1)
