"""The SQL of the Merkle tiles and checkpoints, shared by both backends (``?`` placeholders).

Writes run in the writer's group transaction (``TreeAppender``), so a tenant's tiles
always describe exactly its stored events: a crash at any instant leaves both or
neither. Each read is one statement, so it sees one consistent state; several reads in a
row (``SqlTreeView``) may see the tree grow in between, which is harmless because it only
grows: a later read extends what an earlier one saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trailkeep.kit.merkle import HASH_SIZE
from trailkeep.kit.tiles import (
    MAX_TILE_LEVEL,
    TILE_WIDTH,
    TileFrontier,
    TileId,
    TileRow,
    TreeStateError,
)
from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import CheckpointRecord

# The last tile of every level; each level's is found by one backwards index probe.
_LAST_TILES = " UNION ALL ".join(
    f"SELECT * FROM (SELECT level, idx, hashes FROM merkle_tiles WHERE tenant_id = ?"
    f" AND level = {level} ORDER BY idx DESC LIMIT 1) AS last{level}"
    for level in range(MAX_TILE_LEVEL)
)
_UPSERT_TILE = (
    "INSERT INTO merkle_tiles (tenant_id, level, idx, hashes) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, level, idx) DO UPDATE SET hashes = excluded.hashes"
)
_CHECKPOINT_COLUMNS = "tenant_id, size, root_hash, note, signed_at"
_TILES_PER_QUERY = 250


def load_frontier(conn: SqlConnection, tenant_id: str) -> TileFrontier:
    rows = conn.execute(_LAST_TILES, (tenant_id,) * MAX_TILE_LEVEL).fetchall()
    return TileFrontier.from_last_tiles(TileRow(lv, ix, bytes(h)) for lv, ix, h in rows)


# One primary-key probe per tile, in one statement. (SQLite cannot use the primary key
# for an OR of (level, idx) pairs: it read every tile of the tenant, 32 MB at a million
# events, 4-11 ms per proof.)
_ONE_TILE = (
    "SELECT level, idx, hashes FROM merkle_tiles WHERE tenant_id = ? AND level = ? AND idx = ?"
)


def get_tiles(conn: SqlConnection, tenant_id: str, ids: Iterable[TileId]) -> dict[TileId, bytes]:
    wanted = list(dict.fromkeys(ids))
    found: dict[TileId, bytes] = {}
    # SQLite allows at most 500 terms in a compound SELECT: a long range's leaves
    # (an archive segment's, ~1,000 tiles) are read a bounded number of tiles at a time.
    for start in range(0, len(wanted), _TILES_PER_QUERY):
        chunk = wanted[start : start + _TILES_PER_QUERY]
        sql = " UNION ALL ".join([_ONE_TILE] * len(chunk))
        params = [value for level, index in chunk for value in (tenant_id, level, index)]
        rows = conn.execute(sql, params).fetchall()
        found.update({(lv, ix): bytes(h) for lv, ix, h in rows})
    return found


def tree_size(conn: SqlConnection, tenant_id: str) -> int:
    """The tree's size from its last level-0 tile: one index probe, no hashing."""
    row = conn.execute(
        "SELECT idx, length(hashes) FROM merkle_tiles WHERE tenant_id = ? AND level = 0"
        " ORDER BY idx DESC LIMIT 1",
        (tenant_id,),
    ).fetchone()
    return 0 if row is None else int(row[0]) * TILE_WIDTH + int(row[1]) // HASH_SIZE


class TreeAppender:
    """Appends a group's leaves to its tenants' trees, inside the group's transaction.

    With ``cache=True`` (SQLite: one writer per database) frontiers stay in memory
    between groups and must be dropped with ``clear()`` whenever a transaction fails.
    Without (PostgreSQL: several processes may write) each group reads them afresh
    under the tenant_seqs locks it already holds, and passes them in as ``loaded``.
    """

    def __init__(self, *, cache: bool) -> None:
        self._cache: dict[str, TileFrontier] | None = {} if cache else None

    def clear(self) -> None:
        if self._cache is not None:
            self._cache.clear()

    def append(
        self,
        conn: SqlConnection,
        leaves: dict[str, list[bytes]],
        first_seq: dict[str, int],
        loaded: dict[str, TileFrontier] | None = None,
    ) -> None:
        """``loaded``: frontiers the caller already read in this transaction."""
        rows = []
        for tenant_id, hashes in leaves.items():
            frontier = loaded.get(tenant_id) if loaded is not None else None
            if frontier is None and self._cache is not None:
                frontier = self._cache.get(tenant_id)
            if frontier is None:
                frontier = load_frontier(conn, tenant_id)
                if self._cache is not None:
                    self._cache[tenant_id] = frontier
            if frontier.size != first_seq[tenant_id]:
                # Seqs and leaves are one numbering; never store events the tree cannot hold.
                raise TreeStateError(
                    f"tenant {tenant_id!r}: the tree has {frontier.size} leaves but the next"
                    f" seq is {first_seq[tenant_id]}"
                )
            for (level, index), data in frontier.extend(hashes).items():
                rows.append((tenant_id, level, index, data))
        if rows:
            conn.executemany(_UPSERT_TILE, rows)


class SqlTreeView:
    """One tenant's tree and checkpoints, read on one connection (see Store.read_tree)."""

    def __init__(self, conn: SqlConnection, tenant_id: str) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    def size(self) -> int:
        return tree_size(self._conn, self._tenant_id)

    def tiles(self, ids: Iterable[TileId]) -> dict[TileId, bytes]:
        return get_tiles(self._conn, self._tenant_id, ids)

    def latest_checkpoint(self) -> CheckpointRecord | None:
        return latest_checkpoint(self._conn, self._tenant_id)

    def checkpoint_at(self, size: int) -> CheckpointRecord | None:
        return checkpoint_at(self._conn, self._tenant_id, size)


# -- checkpoints -------------------------------------------------------------------


def _checkpoint(row: Any) -> CheckpointRecord | None:
    if row is None:
        return None
    tenant_id, size, root_hash, note, signed_at = row
    return CheckpointRecord(tenant_id, size, bytes(root_hash), note, signed_at)


def latest_checkpoint(conn: SqlConnection, tenant_id: str) -> CheckpointRecord | None:
    return _checkpoint(
        conn.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE tenant_id = ?"
            " ORDER BY size DESC LIMIT 1",
            (tenant_id,),
        ).fetchone()
    )


def list_checkpoints(
    conn: SqlConnection, tenant_id: str, below: int | None, limit: int
) -> list[CheckpointRecord]:
    """Checkpoints newest first, those of size < ``below`` when given (keyset paging)."""
    bound = "" if below is None else " AND size < ?"
    params: tuple[Any, ...] = (tenant_id,) if below is None else (tenant_id, below)
    rows = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE tenant_id = ?{bound}"
        " ORDER BY size DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [record for row in rows if (record := _checkpoint(row)) is not None]


def checkpoint_at(conn: SqlConnection, tenant_id: str, size: int) -> CheckpointRecord | None:
    return _checkpoint(
        conn.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE tenant_id = ? AND size = ?",
            (tenant_id, size),
        ).fetchone()
    )


def insert_checkpoint(conn: SqlConnection, record: CheckpointRecord) -> None:
    """Store a checkpoint; one already stored at that size (same tree, same key) wins."""
    conn.execute(
        f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant_id, size) DO NOTHING",
        (record.tenant_id, record.size, record.root_hash, record.note, record.signed_at),
    )
