"""Inclusion and consistency proofs from the stored tiles: O(log n) tiles, one query.

The nodes a proof needs are known from its sizes alone (kit/merkle.py), so their tiles
are fetched at once, then the proof is computed in memory. These run inside
``Store.read_tree`` (a worker thread, one database call).
"""

from __future__ import annotations

from collections.abc import Iterable

from trailkeep.kit import merkle, merkle_range
from trailkeep.kit.tiles import TILE_WIDTH, TileNodes, needed_tiles
from trailkeep.store.protocol import TreeView


def _nodes_for(view: TreeView, nodes: Iterable[merkle.NodeId]) -> TileNodes:
    tiles = view.tiles(needed_tiles(nodes))

    def get(level: int, index: int) -> bytes:
        data = tiles.get((level, index))
        if data is None:
            raise merkle.NodeError(f"tile {level}/{index} is missing")
        return data

    return TileNodes(get)


def inclusion(view: TreeView, index: int, size: int) -> tuple[list[bytes], bytes, bytes]:
    """(proof, leaf hash, root) of leaf ``index`` in the tree of ``size`` leaves."""
    wanted = [*merkle.inclusion_proof_nodes(index, size), *merkle.root_nodes(size), (0, index)]
    nodes = _nodes_for(view, wanted)
    proof = merkle.inclusion_proof(index, size, nodes)
    return proof, nodes(0, index), merkle.root_from_nodes(size, nodes)


def consistency(view: TreeView, old: int, new: int) -> tuple[list[bytes], bytes, bytes]:
    """(proof, old root, new root) between the trees of ``old`` and ``new`` leaves."""
    wanted = [
        *merkle.consistency_proof_nodes(old, new),
        *merkle.root_nodes(old),
        *merkle.root_nodes(new),
    ]
    nodes = _nodes_for(view, wanted)
    return (
        merkle.consistency_proof(old, new, nodes),
        merkle.root_from_nodes(old, nodes),
        merkle.root_from_nodes(new, nodes),
    )


def outside_range(view: TreeView, begin: int, end: int, size: int) -> list[bytes]:
    """The hashes of the tree of ``size`` outside the leaves ``[begin, end)``
    (kit/merkle_range.py): what proves an export of that range complete."""
    intervals = merkle_range.outside_nodes(begin, end, size)
    wanted = [tile for lo, hi in intervals for tile in merkle_range.tiling(lo, hi)]
    nodes = _nodes_for(view, wanted)
    return [merkle_range.node_from_tiles(lo, hi, nodes) for lo, hi in intervals]


def inclusions(view: TreeView, seqs: list[int], size: int) -> list[tuple[bytes, list[bytes]]]:
    """(leaf hash, inclusion proof) of each of ``seqs`` in the tree of ``size``, with
    the tiles of all of them fetched at once."""
    wanted = [node for seq in seqs for node in merkle.inclusion_proof_nodes(seq, size)]
    nodes = _nodes_for(view, [*wanted, *((0, seq) for seq in seqs)])
    return [(nodes(0, seq), merkle.inclusion_proof(seq, size, nodes)) for seq in seqs]


def leaf_hashes(view: TreeView, begin: int, end: int) -> bytes:
    """The leaf hashes of seqs ``[begin, end)``, concatenated, from the level-0 tiles."""
    first, last = begin // TILE_WIDTH, (end - 1) // TILE_WIDTH
    tiles = view.tiles([(0, index) for index in range(first, last + 1)])
    out = bytearray()
    for index in range(first, last + 1):
        data = tiles.get((0, index))
        if data is None:
            raise merkle.NodeError(f"tile 0/{index} is missing")
        out += data
    start = (begin - first * TILE_WIDTH) * merkle.HASH_SIZE
    found = bytes(out[start : start + (end - begin) * merkle.HASH_SIZE])
    if len(found) != (end - begin) * merkle.HASH_SIZE:
        raise merkle.NodeError(f"the tiles do not hold every leaf of seqs {begin}..{end - 1}")
    return found
