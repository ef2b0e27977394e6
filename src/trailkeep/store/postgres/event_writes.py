"""The body of one group-commit transaction on PostgreSQL.

1. Lock the ``tenant_seqs`` row of every tenant in the group, in tenant order (so two
   processes never deadlock). Until COMMIT no other process can hand out seqs of these
   tenants, nor store an id of theirs: seqs stay unique and gapless, and an idempotency
   check made under the lock cannot race with another process's insert.
2. Look up client-supplied ids among stored events (retries and conflicts).
3. COPY the new rows in (binary), then advance each tenant's counter.
4. Append the new leaves to each tenant's Merkle tiles, read afresh under the same locks
   (another process may have grown the tree since this one last wrote).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from trailkeep.kit.tiles import TileFrontier, TileId, frontier_tiles
from trailkeep.store.derived.indexer import INDEXER, count_range
from trailkeep.store.fulltext.index_rows import with_search
from trailkeep.store.log.event_rows import Prior, build_rows, pruned_prior, supplied_ids
from trailkeep.store.log.positions import move_positions_past, seq_ranges
from trailkeep.store.models import AppendResult, EventDraft
from trailkeep.store.postgres.qmark import QmarkConnection
from trailkeep.store.tree.tiles_sql import TreeAppender

EVENT_COLUMNS = (
    "tenant_id, seq, id, occurred_at, received_at, action, actor_id, actor_type,"
    " severity, outcome, request_hash, body, search"
)
_EVENT_TYPES = [
    "text", "int8", "text", "int8", "int8", "text", "text", "text", "int4", "text", "bytea",
    "bytea", "tsvector",
]  # fmt: skip
TARGET_COLUMNS = "tenant_id, seq, target_type, target_id, occurred_at"
_TARGET_TYPES = ["text", "int8", "text", "text", "int8"]
_ID_TYPES = ["text", "int8", "text", "int8"]


def lock_counters(conn: psycopg.Connection[Any], tenants: list[str]) -> dict[str, int]:
    """Lock and read the next seq of each tenant (creating counters that are missing)."""
    sql = (
        "SELECT tenant_id, next_seq FROM tenant_seqs WHERE tenant_id = ANY(%s)"
        " ORDER BY tenant_id FOR UPDATE"
    )
    found = dict(conn.execute(sql, (tenants,)).fetchall())
    if len(found) < len(tenants):
        conn.execute(
            "INSERT INTO tenant_seqs (tenant_id, next_seq) SELECT t, 0 FROM unnest(%s::text[]) t"
            " ON CONFLICT (tenant_id) DO NOTHING",
            ([t for t in tenants if t not in found],),
        )
        found = dict(conn.execute(sql, (tenants,)).fetchall())
    return found


def _existing(
    conn: psycopg.Connection[Any], drafts: list[EventDraft]
) -> dict[tuple[str, str], Prior]:
    found: dict[tuple[str, str], Prior] = {}
    for tenant_id, ids in supplied_ids(drafts).items():
        rows = conn.execute(
            "SELECT i.id, i.seq, e.request_hash, e.body FROM event_ids i"
            " JOIN events e ON e.tenant_id = i.tenant_id AND e.occurred_at = i.occurred_at"
            " AND e.seq = i.seq WHERE i.tenant_id = %s AND i.id = ANY(%s)",
            (tenant_id, ids),
        ).fetchall()
        for event_id, seq, request_hash, body in rows:
            found[(tenant_id, event_id)] = (seq, request_hash, body)
        missing = [i for i in ids if (tenant_id, i) not in found]
        if missing:
            pruned = conn.execute(
                "SELECT id, seq FROM pruned_events WHERE tenant_id = %s AND id = ANY(%s)",
                (tenant_id, missing),
            ).fetchall()
            for event_id, seq in pruned:
                found[(tenant_id, event_id)] = pruned_prior(seq)
    return found


def copy_rows(
    conn: psycopg.Connection[Any],
    table: str,
    columns: str,
    types: list[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def insert_log_rows(
    conn: psycopg.Connection[Any],
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """COPY finished rows (column order of EVENT_COLUMNS without ``search``, and of
    TARGET_COLUMNS) and their ids, each row with its full-text tsvector
    (fulltext/index_rows.py): what the log needs; the rollups follow after commit."""
    copy_rows(conn, "events", EVENT_COLUMNS, _EVENT_TYPES, with_search(event_rows))
    copy_rows(
        conn,
        "event_ids",
        "tenant_id, seq, id, occurred_at",
        _ID_TYPES,
        [(r[0], r[1], r[2], r[3]) for r in event_rows],
    )
    copy_rows(conn, "event_targets", TARGET_COLUMNS, _TARGET_TYPES, target_rows)


def insert_restored_rows(
    conn: psycopg.Connection[Any],
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """Archived rows put back (retention): event_ids kept their ids and seqs."""
    copy_rows(conn, "events", EVENT_COLUMNS, _EVENT_TYPES, with_search(event_rows))
    copy_rows(conn, "event_targets", TARGET_COLUMNS, _TARGET_TYPES, target_rows)


def insert_stored_rows(
    conn: psycopg.Connection[Any],
    event_rows: Sequence[tuple[Any, ...]],
    target_rows: Sequence[tuple[Any, ...]],
) -> None:
    """The log rows and, in the same transaction, their rollup counts, with the
    indexer's position moved past them: for bulk loads (benchmarks, tests) of rows given
    in seq order per tenant, so that the service starts with nothing to catch up."""
    insert_log_rows(conn, event_rows, target_rows)
    qmark = QmarkConnection(conn)
    for tenant_id, (low, high) in seq_ranges(event_rows).items():
        count_range(qmark, True, tenant_id, low, high)
    move_positions_past(qmark, INDEXER, event_rows)


def load_frontiers(conn: psycopg.Connection[Any], sizes: dict[str, int]) -> dict[str, TileFrontier]:
    """The tree frontiers of the tenants of a group, in one query.

    ``sizes`` are the next seqs read under the tenant_seqs locks, so the tiles they name
    are exactly the partial tiles of each stored tree (kit/tiles.frontier_tiles).
    """
    wanted = [(t, lv, ix) for t, n in sizes.items() for lv, ix, _ in frontier_tiles(n)]
    found: dict[str, dict[TileId, bytes]] = {t: {} for t in sizes}
    if wanted:
        rows = conn.execute(
            "SELECT m.tenant_id, m.level, m.idx, m.hashes FROM merkle_tiles m"
            " JOIN unnest(%s::text[], %s::int4[], %s::int8[]) AS w(tenant_id, level, idx)"
            " ON m.tenant_id = w.tenant_id AND m.level = w.level AND m.idx = w.idx",
            ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        ).fetchall()
        for tenant_id, level, index, hashes in rows:
            found[tenant_id][(level, index)] = bytes(hashes)
    return {t: TileFrontier.from_tiles(n, found[t]) for t, n in sizes.items()}


def write_events(
    conn: psycopg.Connection[Any], drafts: list[EventDraft], merkle: bool = True
) -> list[AppendResult]:
    """Runs inside the writer's transaction. ``merkle=False`` only for bench/ingest.py's
    "without integrity" baseline."""
    counters = lock_counters(conn, sorted({d.tenant_id for d in drafts}))
    start = dict(counters)

    def take(tenant_id: str) -> int:
        seq = counters[tenant_id]
        counters[tenant_id] = seq + 1
        return seq

    rows = build_rows(drafts, _existing(conn, drafts), take, hash_leaves=merkle)
    insert_log_rows(conn, rows.events, rows.targets)
    if merkle and rows.leaves:
        loaded = load_frontiers(conn, {t: start[t] for t in rows.leaves})
        TreeAppender(cache=False).append(QmarkConnection(conn), rows.leaves, rows.first_seq, loaded)
    moved = [t for t in counters if counters[t] != start[t]]
    if moved:
        conn.execute(
            "UPDATE tenant_seqs AS s SET next_seq = u.next_seq"
            " FROM unnest(%s::text[], %s::int8[]) AS u(tenant_id, next_seq)"
            " WHERE s.tenant_id = u.tenant_id",
            (moved, [counters[t] for t in moved]),
        )
    return rows.results
