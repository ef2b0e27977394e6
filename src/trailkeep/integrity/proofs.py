"""Inclusion and consistency proofs read from the stored tiles: O(log n) tile reads each.

The nodes a proof needs are known from its sizes alone (kit/merkle.py), so their
tiles are fetched in one query, then the proof is computed from them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from trailkeep.kit import merkle
from trailkeep.kit.tiles import TileNodes, needed_tiles
from trailkeep.store.base import Store


async def _nodes_for(store: Store, tenant_id: str, nodes: Iterable[merkle.NodeId]) -> TileNodes:
    tiles = await store.get_tiles(tenant_id, needed_tiles(nodes))

    def get(level: int, index: int) -> bytes:
        data = tiles.get((level, index))
        if data is None:
            raise merkle.NodeError(f"tile {level}/{index} is missing")
        return data

    return TileNodes(get)


async def read_inclusion(
    store: Store, tenant_id: str, index: int, size: int
) -> tuple[list[bytes], bytes, bytes]:
    """(proof, leaf hash, root) of leaf ``index`` in the tree of ``size`` leaves."""
    wanted = [
        *merkle.inclusion_proof_nodes(index, size),
        *merkle.root_nodes(size),
        (0, index),
    ]
    nodes = await _nodes_for(store, tenant_id, wanted)
    proof = merkle.inclusion_proof(index, size, nodes)
    return proof, nodes(0, index), merkle.root_from_nodes(size, nodes)


async def read_consistency(store: Store, tenant_id: str, old: int, new: int) -> list[bytes]:
    nodes = await _nodes_for(store, tenant_id, merkle.consistency_proof_nodes(old, new))
    return merkle.consistency_proof(old, new, nodes)


async def read_consistency_and_roots(
    store: Store, tenant_id: str, old: int, new: int
) -> tuple[list[bytes], bytes, bytes]:
    """(proof, old root, new root) from one tile read."""
    wanted = [
        *merkle.consistency_proof_nodes(old, new),
        *merkle.root_nodes(old),
        *merkle.root_nodes(new),
    ]
    nodes = await _nodes_for(store, tenant_id, wanted)
    return (
        merkle.consistency_proof(old, new, nodes),
        merkle.root_from_nodes(old, nodes),
        merkle.root_from_nodes(new, nodes),
    )
