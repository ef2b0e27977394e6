"""Merkle trees in the benchmarks: tiles for preloads, and checks of what servers sign.

Preloads write rows straight into the database, so they also write what the service's
writer keeps beside them: each tenant's Merkle tiles (kit/tiles.py; leaf i is
SHA-256(0x00 || stored body of seq i)). The writer refuses to append to a tenant whose
tree does not hold exactly its events. ``TreeLoader`` grows every tenant's tree chunk
by chunk, in the chunk's own transaction, with the service's own frontier code.

The checks compare what a running server signs with what the database holds: a
checkpoint must be signed by the run's key (common.signing_key), name the tenant's
origin, and have the size and root of the tree recomputed from the stored bodies.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from common import http_get_json, signing_key
from trailkeep.integrity.checkpoint import Checkpoint, open_checkpoint
from trailkeep.integrity.note import NoteError, Verifier, parse_signer
from trailkeep.integrity.signing_keys import LogKey
from trailkeep.kit.merkle import leaf_hash
from trailkeep.kit.tiles import TileFrontier, TreeStateError
from trailkeep.store.connection import SqlConnection
from trailkeep.store.tree.tiles_sql import load_frontier
from workload import BODY, EventRowT

# The writer's statement (store/tree/tiles_sql.py): a tile's final content is what counts.
UPSERT_TILE = (
    "INSERT INTO merkle_tiles (tenant_id, level, idx, hashes) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, level, idx) DO UPDATE SET hashes = excluded.hashes"
)
TileRowT = tuple[str, int, int, bytes]


class TreeLoader:
    """Every preloaded tenant's tree, grown chunk by chunk as rows are written."""

    def __init__(self, frontiers: dict[str, TileFrontier]) -> None:
        self.frontiers = frontiers

    @classmethod
    def open(
        cls, conn: SqlConnection, next_seq: dict[str, int], label: str = "preload"
    ) -> TreeLoader:
        """The stored trees of these tenants; each must hold exactly its stored events."""
        frontiers = {}
        for tenant, seq in next_seq.items():
            try:
                frontier = load_frontier(conn, tenant)
            except TreeStateError as exc:
                raise SystemExit(f"error: {label}: tenant {tenant!r}: {exc}") from None
            if frontier.size != seq:
                raise SystemExit(
                    f"error: {label}: tenant {tenant!r} has {seq:,} events but its tree"
                    f" {frontier.size:,} leaves; rebuild the database"
                )
            frontiers[tenant] = frontier
        return cls(frontiers)

    def tiles(self, events: Sequence[EventRowT]) -> list[TileRowT]:
        """The tiles that ``events`` (each tenant's in seq order, after its last) change."""
        leaves: dict[str, list[bytes]] = {}
        for row in events:
            tenant = row[0]
            hashes = leaves.get(tenant)
            if hashes is None:
                hashes = leaves[tenant] = []
                if row[1] != self.frontiers[tenant].size:
                    raise RuntimeError(
                        f"tenant {tenant!r}: seq {row[1]} follows a tree of"
                        f" {self.frontiers[tenant].size} leaves"
                    )
            hashes.append(leaf_hash(row[BODY]))
        out: list[TileRowT] = []
        for tenant, hashes in leaves.items():
            changed = self.frontiers[tenant].extend(hashes)
            out.extend((tenant, level, index, data) for (level, index), data in changed.items())
        return out

    def write(self, conn: SqlConnection, events: Sequence[EventRowT]) -> None:
        """Upsert the changed tiles, inside the transaction that inserts ``events``."""
        rows = self.tiles(events)
        if rows:
            conn.executemany(UPSERT_TILE, rows)

    def sizes(self) -> dict[str, int]:
        return {tenant: frontier.size for tenant, frontier in self.frontiers.items()}


def leaves_by_tenant(
    events: Sequence[EventRowT],
) -> tuple[dict[str, list[bytes]], dict[str, int]]:
    """What TreeAppender.append takes for rows given in seq order per tenant: each
    tenant's leaf hashes and its first seq."""
    leaves: dict[str, list[bytes]] = {}
    first: dict[str, int] = {}
    for row in events:
        tenant = row[0]
        if tenant not in leaves:
            leaves[tenant] = []
            first[tenant] = row[1]
        leaves[tenant].append(leaf_hash(row[BODY]))
    return leaves, first


def tree_problems(conn: SqlConnection, counts: dict[str, int]) -> list[str]:
    """Tenants whose stored tiles do not form a tree of exactly their event count."""
    problems = []
    for tenant, count in sorted(counts.items()):
        try:
            size = load_frontier(conn, tenant).size
        except TreeStateError as exc:
            problems.append(f"{tenant}: {exc}")
            continue
        if size != count:
            problems.append(f"{tenant}: {count:,} events, a tree of {size:,} leaves")
    return problems


def root_of_leaves(leaves: Iterable[bytes]) -> tuple[int, bytes]:
    """(size, root) of the tree of these leaf hashes, in order."""
    frontier = TileFrontier()
    frontier.extend(leaves)
    return frontier.size, frontier.root()


def ordered_leaves(rows: Iterable[tuple[int, bytes]], count: int) -> list[bytes]:
    """Leaf hashes by seq from (seq, body) rows in any order; seqs must be 0..count-1."""
    leaves: list[bytes | None] = [None] * count
    for seq, body in rows:
        if not 0 <= seq < count or leaves[seq] is not None:
            raise ValueError(f"seq {seq} is out of 0..{count - 1} or stored twice")
        leaves[seq] = leaf_hash(bytes(body))
    missing = [i for i, leaf in enumerate(leaves) if leaf is None]
    if missing:
        raise ValueError(f"{len(missing)} seqs missing, the first {missing[0]}")
    return leaves  # type: ignore[return-value]


# -- signed checkpoints ------------------------------------------------------------------


def log_host() -> str:
    return parse_signer(signing_key()).name


def origin_of(tenant: str) -> str:
    return f"{log_host()}/t/{tenant}"


def verifier_for(tenant: str) -> Verifier:
    """The verifier of the tenant's checkpoints, from the run's own signing key."""
    return LogKey(parse_signer(signing_key())).signer_for(tenant).verifier


def open_signed(note: str, tenant: str) -> Checkpoint:
    """The checkpoint in ``note`` once its signature and origin are checked."""
    return open_checkpoint(note, [verifier_for(tenant)], origin=origin_of(tenant))


def wait_for_checkpoint(
    port: int, token: str, tenant: str, size: int, timeout: float = 30.0
) -> dict[str, Any] | None:
    """GET /v1/checkpoint (as a platform admin) until it reaches ``size``; None on timeout."""
    path = "/v1/checkpoint?" + urllib.parse.urlencode({"tenant_id": tenant})
    deadline = time.monotonic() + timeout
    while True:
        try:
            found: dict[str, Any] = http_get_json(port, path, token)
            if found["tree_size"] >= size:
                return found
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: nothing signed yet
                raise
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def checkpoint_problems(
    port: int, token: str, expected: dict[str, tuple[int, bytes]], timeout: float = 30.0
) -> list[str]:
    """Each tenant's latest checkpoint, once signed: signature, origin, size and root.

    ``timeout`` is for all tenants together (the signer signs them all each round).
    """
    problems = []
    deadline = time.monotonic() + timeout
    for tenant, (size, root) in sorted(expected.items()):
        left = max(0.0, deadline - time.monotonic())
        found = wait_for_checkpoint(port, token, tenant, size, left)
        if found is None:
            problems.append(f"{tenant}: no checkpoint of size {size:,} within {timeout:g} s")
            continue
        try:
            signed = open_signed(found["note"], tenant)
        except NoteError as exc:
            problems.append(f"{tenant}: checkpoint note refused: {exc}")
            continue
        if (signed.size, signed.root_hash) != (size, root):
            problems.append(
                f"{tenant}: signed size {signed.size:,} root {signed.root_hash.hex()[:16]}..,"
                f" expected {size:,} {root.hex()[:16]}.. (from the stored bodies)"
            )
    return problems
