"""Inclusion and consistency proofs from the stored tiles: O(log n) tiles, one query.

The nodes a proof needs are known from its sizes alone (kit/merkle.py), so their tiles
are fetched at once, then the proof is computed in memory. These run inside
``Store.read_tree`` (a worker thread, one database call).
"""

from __future__ import annotations

from collections.abc import Iterable

from trailkeep.kit import merkle
from trailkeep.kit.tiles import TileNodes, needed_tiles
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
