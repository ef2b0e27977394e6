"""The top N groups of a family with thousands of groups (actors), without adding up
every group's buckets: a threshold algorithm over the buckets that tile the window.

1. Read the M largest counts of each bucket (M = 10 x N to start).
2. The groups seen are the candidates; add up their exact totals over every bucket
   (lookups by key: a few thousand at most).
3. A group seen in no bucket's M largest has at most the M-th largest count of each
   full bucket: the sum of those is a bound on its total. When the N-th candidate's
   total is above the bound, no other group can be in the top N: done. Otherwise M
   grows fourfold, up to MAX_HEADS; then the caller adds up everything.

Busy groups stand out in real logs (a few services and users make most events), so the
first round usually decides; nearly uniform counts need more rounds or the full sum.
"""

from __future__ import annotations

from typing import Any

from trailkeep.store.connection import SqlConnection
from trailkeep.store.reads.conditions import Where

MAX_HEADS = 2_000
MAX_BUCKETS = 16  # more buckets than this: the full sum reads about as much
MAX_LOOKUPS = 16_000  # candidates x buckets: bound parameters of one statement


def _heads(
    conn: SqlConnection,
    buckets: list[tuple[str, int]],
    where: Where,
    group: str,
    m: int,
) -> list[list[tuple[Any, int]]]:
    """The ``m`` largest (group, count) of each bucket, in one statement."""
    parts: list[str] = []
    args: list[Any] = []
    for i, (table, bucket) in enumerate(buckets):
        parts.append(
            f"SELECT * FROM (SELECT {i} AS i, {group} AS k, e.n AS n FROM {table} e"
            f" WHERE {where.text()} AND e.bucket = ? ORDER BY e.n DESC LIMIT ?) AS h{i}"
        )
        args += [*where.args, bucket, m]
    heads: list[list[tuple[Any, int]]] = [[] for _ in buckets]
    for i, key, n in conn.execute(" UNION ALL ".join(parts), args).fetchall():
        heads[int(i)].append((key, int(n)))
    return heads


def _totals(
    conn: SqlConnection,
    buckets: list[tuple[str, int]],
    where: Where,
    group: str,
    keys: list[Any],
    postgres: bool,
) -> dict[Any, int]:
    if postgres:
        # One array parameter: the same statement text for any number of candidates,
        # prepared once (a list of N marks is a new statement for each N: ~25 ms).
        among, values = f"{group} = ANY(CAST(? AS text[]))", [list(keys)]
    else:
        among, values = f"{group} IN ({','.join('?' * len(keys))})", list(keys)
    parts: list[str] = []
    args: list[Any] = []
    for table, bucket in buckets:
        parts.append(
            f"SELECT {group} AS k, e.n AS n FROM {table} e"
            f" WHERE {where.text()} AND e.bucket = ? AND {among}"
        )
        args += [*where.args, bucket, *values]
    sql = f"SELECT k, SUM(n) FROM ({' UNION ALL '.join(parts)}) AS p GROUP BY k"
    return {key: int(total) for key, total in conn.execute(sql, args).fetchall()}


def top_by_threshold(
    conn: SqlConnection,
    buckets: list[tuple[str, int]],
    where: Where,
    group: str,
    top: int,
    postgres: bool = False,
) -> list[tuple[Any, int]] | None:
    """The top ``top`` (group, total) over ``buckets`` ((table, bucket start) pairs
    tiling the window; ``where`` filters the tenant; the group is a text column),
    largest first, ties by group; None when the rounds could not decide."""
    if len(buckets) > MAX_BUCKETS:
        return None
    m = 10 * top
    while m <= MAX_HEADS:
        heads = _heads(conn, buckets, where, group, m)
        candidates = sorted({key for head in heads for key, _n in head})
        if not candidates:
            return []
        if len(candidates) * len(buckets) > MAX_LOOKUPS:
            return None
        totals = _totals(conn, buckets, where, group, candidates, postgres)
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        # Full buckets (m rows) may hide groups with up to their m-th count.
        bound = sum(head[-1][1] for head in heads if len(head) == m)
        if bound == 0 or (len(ranked) == top and ranked[-1][1] > bound):
            return ranked
        m *= 4
    return None
